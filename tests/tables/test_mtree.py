"""mtree: longest-prefix match, several values per prefix, Kamailio's duplicate rules and
character list, data files, the script API, the RPC shapes (checked against Kamailio
5.6.3's mtree.* over jsonrpcs) and reloads that keep the tree in use when the file is bad."""
from __future__ import annotations

from pathlib import Path

import pytest
from dispatcher.bench import make_msg

from kamrouter.config import ConfigError
from kamrouter.modules.mtree.api import NoSuchTree
from kamrouter.modules.mtree.files import load_file
from kamrouter.modules.mtree.tree import INTEGER, PrefixTree, TreeError

from .harness import mtree_on


def tree_of(*pairs: tuple[str, str | int], **options) -> PrefixTree:
    tree = PrefixTree("t", **options)
    for prefix, value in pairs:
        tree.add(prefix, value)
    return tree.finish()


def test_longest_prefix_wins() -> None:
    tree = tree_of(("49", "de"), ("4930", "berlin"), ("4989", "munich"), ("1", "nanp"))
    assert tree.longest("4930123") == ("4930", "berlin")
    assert tree.longest("4940") == ("49", "de")
    assert tree.longest("4989") == ("4989", "munich")
    assert tree.longest("49") == ("49", "de")
    assert tree.longest("4") is None
    assert tree.longest("33123") is None
    assert tree.longest("") is None
    assert tree.all("4930123") == [("4930", "berlin"), ("49", "de")]


def test_several_values_per_prefix_newest_first_as_kamailio() -> None:
    tree = tree_of(("49", "de"), ("4930", "berlin"), ("49", "germany"), duplicates="allow")
    assert tree.longest("491") == ("49", "germany")
    assert tree.all("4930") == [("4930", "berlin"), ("49", "germany"), ("49", "de")]
    assert tree.values_of("49") == ["germany", "de"]
    assert tree.value_count == 3 and len(tree.items) == 2


def test_duplicate_prefixes_error_or_ignore() -> None:
    with pytest.raises(TreeError, match="already in the tree"):
        tree_of(("49", "a"), ("49", "b"))
    assert tree_of(("49", "a"), ("49", "b"), duplicates="ignore").longest("49") == ("49", "a")


def test_characters_and_lengths_follow_kamailio() -> None:
    with pytest.raises(TreeError, match="not in char_list"):
        tree_of(("+49", "x"))
    with pytest.raises(TreeError, match="longer than 63"):
        tree_of(("1" * 64, "x"))
    tree = tree_of(("+49", "de"), ("+4930", "berlin"), char_list="+0123456789")
    assert tree.longest("+4930123") == ("+4930", "berlin")
    assert tree.longest("+49a") is None           # a foreign character where the walk goes
    assert tree.longest("+4930123;x") == ("+4930", "berlin")  # beyond the longest prefix


def test_integer_values() -> None:
    tree = tree_of(("49", "7"), ("4930", 8), type=INTEGER)
    assert tree.longest("4930") == ("4930", 8)
    with pytest.raises(TreeError, match="not an integer"):
        tree_of(("49", "gw1"), type=INTEGER)


def test_files_csv_multi_toml_and_errors_naming_file_and_line(tmp_path: Path) -> None:
    plain = tmp_path / "routes.csv"
    plain.write_text("prefix,value\n# a comment\n49,de\n4930,gw1,gw2\n\n")
    tree = load_file(PrefixTree("routes"), plain)
    assert tree.longest("4930") == ("4930", "gw1,gw2")  # extra columns packed, as Kamailio
    multi = tmp_path / "mtrees.csv"
    multi.write_text("tname,tprefix,tvalue\na,49,1\nb,49,2\na,4930,3\n")
    assert load_file(PrefixTree("a"), multi, multi=True).all("4930") == [("4930", "3"),
                                                                          ("49", "1")]
    toml = tmp_path / "t.toml"
    toml.write_text('"49" = "de"\n"4930" = ["x", "y"]\n')
    assert load_file(PrefixTree("t", duplicates="allow"), toml).longest("4930") == ("4930", "y")
    plain.write_text("49,de\n4930\n")
    with pytest.raises(TreeError, match=r"routes\.csv:2: expected prefix,value"):
        load_file(PrefixTree("routes"), plain)
    plain.write_text("49,de\n49x,oops\n")
    with pytest.raises(TreeError, match=r"routes\.csv:2: prefix '49x'"):
        load_file(PrefixTree("routes"), plain)
    with pytest.raises(TreeError, match="cannot read"):
        load_file(PrefixTree("routes"), tmp_path / "missing.csv")


def test_a_bad_file_stops_the_router_at_start(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("49,a\n49,b\n")
    with pytest.raises(ConfigError, match=r"r\.csv:2: prefix '49' is already"):
        mtree_on(tmp_path, {"name": "r", "file": "r.csv"})


def test_script_api(tmp_path: Path) -> None:
    mt = mtree_on(tmp_path, {"name": "carriers", "type": 2,
                             "items": {"49": 1, "4930": 2, "1": 3}},
                  {"name": "geo", "items": {"49": ["de", "germany"]}, "duplicates": "allow"})
    msg = make_msg()
    assert mt.api.mt_match(msg, "carriers", "4930123") == 2 and msg.vars["tvalue"] == 2
    assert mt.api.mt_match(msg, "carriers", "4930123", 2) == [2, 1]
    assert msg.vars["tvalues"] == [2, 1]
    assert mt.api.mt_match(msg, "carriers", "33") is None
    assert mt.api.mt_match(msg, "carriers", None) is None
    assert mt.api.mt_match(msg, "geo", "491", 2) == ["germany", "de"]
    assert mt.api.match("carriers", "1555") == ("1", 3)
    with pytest.raises(NoSuchTree):
        mt.api.mt_match(msg, "nosuch", "1")
    assert mt.stat("mtree", "carriers-matched") == 3
    assert mt.stat("mtree", "carriers-not_matched") == 2
    assert mt.stat("mtree", "carriers-prefixes") == 3


async def test_rpc_shapes_as_kamailio(tmp_path: Path) -> None:
    (tmp_path / "geo.csv").write_text("49,de\n4930,berlin\n4989,munich\n49,germany\n")
    mt = mtree_on(tmp_path, {"name": "geoi", "type": 2, "items": {"49": 7, "4930": 8}},
                  {"name": "geo", "file": "geo.csv", "duplicates": "allow"})
    assert await mt.rpc("mtree.list") == [
        {"tname": "geo", "tprefix": "49", "tvalue": ["germany", "de"]},
        {"tname": "geo", "tprefix": "4930", "tvalue": ["berlin"]},
        {"tname": "geo", "tprefix": "4989", "tvalue": ["munich"]},
        {"tname": "geoi", "tprefix": "49", "tvalue": [7]},
        {"tname": "geoi", "tprefix": "4930", "tvalue": [8]}]
    assert len(await mt.rpc("mtree.list", "geo")) == 5     # a name prefix, as Kamailio
    assert len(await mt.rpc("mtree.list", "geoi")) == 2
    summary = await mt.rpc("mtree.summary", "geoi")
    assert [one["table"] for one in summary] == ["geoi"]
    assert set(summary[0]["item"]) == {"ttype", "memsize", "nrnodes", "nritems",
                                       "reload_count", "reload_time"}
    assert summary[0]["item"]["ttype"] == 2 and summary[0]["item"]["reload_count"] == 1
    assert await mt.rpc("mtree.summary", "nosuch") == ("error", 404, "Tree not found")
    assert await mt.rpc("mtree.match", "geo", "4930123", 0) == {"PREFIX": "4930",
                                                                "TVALUE": "berlin"}
    assert await mt.rpc("mtree.match", "geoi", "4930123", 0) == {"PREFIX": "4930", "TVALUE": 8}
    assert await mt.rpc("mtree.match", "geo", "4930123", 2) == [
        {"PREFIX": "4930", "TVALUE": "berlin"}, {"PREFIX": "49", "TVALUE": "germany"},
        {"PREFIX": "49", "TVALUE": "de"}]
    assert await mt.rpc("mtree.match", "geo", 4989, 0) == {"PREFIX": "4989", "TVALUE": "munich"}
    assert await mt.rpc("mtree.match", "geo", "1234", 0) == ("error", 404, "Prefix not found")
    assert await mt.rpc("mtree.match", "geo", "49a", 0) == ("error", 404, "Prefix not found")
    assert await mt.rpc("mtree.match", "geo", "49", 1) == ("error", 500,
                                                            "Invalid parameter 'mode'")
    assert await mt.rpc("mtree.match", "nosuch", "49", 0) == ("error", 404, "Tree not found")
    assert await mt.rpc("mtree.reload") == "Ok. Mtree reloaded."
    assert await mt.rpc("mtree.reload", "nosuch") == ("error", 500,
                                                      "Can not find specified Mtree")


async def test_no_trees_at_all(tmp_path: Path) -> None:
    mt = mtree_on(tmp_path)
    assert await mt.rpc("mtree.list") == ("error", 500, "Empty tree list.")
    assert await mt.rpc("mtree.summary") == ("error", 500, "Empty tree list")
    assert await mt.rpc("mtree.reload") == ("error", 500, "No Mtrees defined.")


async def test_reload_keeps_the_tree_in_use_when_the_file_is_bad(tmp_path: Path) -> None:
    data = tmp_path / "routes.csv"
    data.write_text("49,gw1\n")
    mt = mtree_on(tmp_path, {"name": "routes", "file": "routes.csv"})
    data.write_text("49,gw2\n4930,gw3\n49,gw4\n")
    answer = await mt.rpc("mtree.reload", "routes")
    assert answer[:2] == ("error", 500) and "routes.csv:3" in answer[2]
    assert mt.api.match("routes", "4930") == ("49", "gw1")
    assert mt.stat("mtree", "reload_failures") == 1
    data.write_text("49,gw2\n4930,gw3\n")
    assert await mt.rpc("mtree.reload", ".") == "Ok. Mtree reloaded."
    assert mt.api.match("routes", "4930") == ("4930", "gw3")
    assert (await mt.rpc("mtree.summary"))[0]["item"]["reload_count"] == 2


def test_config_problems_name_the_key(tmp_path: Path) -> None:
    from kamrouter.config import build_section
    from kamrouter.modules.mtree.config import TreeConfig

    problems: list[str] = []
    build_section(TreeConfig, {"type": 1, "multi": True, "file": "x.json", "char_list": "00"},
                  "mtree[0]", problems)
    assert any(p.startswith("mtree[0].name: missing") for p in problems)
    assert any(p.startswith("mtree[0].type: 1 must be 0") for p in problems)
    assert any(p.startswith("mtree[0].file:") for p in problems)
    assert any(p.startswith("mtree[0].char_list:") for p in problems)
    with pytest.raises(ConfigError, match="defined twice"):
        mtree_on(tmp_path, {"name": "a"}, {"name": "a"})
