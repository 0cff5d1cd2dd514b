"""htable in a real router process: kamcli end to end over the control socket, and the
ban-list example script driven by sipp (ban with kamcli -> 403; unban -> the call goes on)."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import free_port
from support.sipp import Sipp

from .conftest import RouterUnderTest

EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "examples" / "banlist.py"
SCENARIOS = Path(__file__).parent / "scenarios"

TABLES = """\
[[htable]]
name = "bans"
persist = "sqlite"

[[htable]]
name = "flood"
autoexpire = 10
updateexpire = false
initval = 0

[[htable]]
name = "static"
load_file = "static.csv"
"""


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RouterUnderTest]:
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "static.csv").write_text("key,value,type\n15,gw1\nweight,3,int\n")
    process = RouterUnderTest(tmp_path / "router", tables=TABLES,
                              script=EXAMPLE.read_text()).start()
    try:
        yield process
    finally:
        process.stop()


def items(router: RouterUnderTest, table: str) -> dict[str, tuple[object, str]]:
    return {row["key"]: (row["value"], row["type"])
            for row in router.kamcli_ok("htable", "dump", table)}


def test_kamcli_htable_end_to_end(router: RouterUnderTest, tmp_path: Path) -> None:
    names = [t["name"] for t in router.kamcli_ok("htable", "list-tables")]
    assert names == ["bans", "flood", "static"]
    assert items(router, "static") == {"15": ("gw1", "str"), "weight": (3, "int")}

    router.kamcli_ok("htable", "sets", "bans", "1000", "42")  # numeric key and value: strings
    router.kamcli_ok("htable", "seti", "bans", "n", "7")
    router.kamcli_ok("htable", "setxs", "bans", "temp", "x", "600")
    router.kamcli_ok("htable", "setxi", "bans", "tempi", "5", "600")
    router.kamcli_ok("htable", "setex", "bans", "n", "300")
    got = router.kamcli_ok("htable", "get", "bans", "1000", "n")
    assert [(r["key"], r["value"], r["type"]) for r in got] == [("1000", "42", "str"),
                                                                ("n", 7, "int")]
    assert got[1]["expire"]  # a local time, as Kamailio prints it
    dump = {r["key"]: r for r in router.kamcli_ok("htable", "dump", "bans")}
    assert dump["temp"]["expires_in"] <= 600 and dump["1000"]["expires_in"] is None
    assert [r["key"] for r in router.kamcli_ok("htable", "dump", "bans", "--match", "%~temp")] \
        == ["temp", "tempi"]
    table_view = router.kamcli_ok("htable", "dump", "bans", output="table")
    assert "expires in" in table_view and "tempi" in table_view

    missing = router.kamcli("htable", "get", "bans", "nobody")
    assert missing.exit_code == 1 and "nobody" in missing.output
    unknown = router.kamcli("htable", "get", "nope", "k")
    assert unknown.exit_code == 1 and "No such htable" in unknown.output

    refused = router.kamcli("htable", "rm", "bans", "n")  # no terminal to ask on
    assert refused.exit_code == 2 and "-y" in refused.output
    router.kamcli_ok("htable", "rm", "-y", "bans", "n")
    assert "n" not in items(router, "bans")

    # export, flush, import: types and numeric-looking keys survive the round trip
    for name in ("bans.csv", "bans.jsonl"):
        router.kamcli_ok("htable", "export", "bans", str(tmp_path / name))
    exported = [json.loads(line) for line in (tmp_path / "bans.jsonl").read_text().splitlines()]
    assert {"key": "1000", "value": "42", "expires": None} in exported
    router.kamcli_ok("htable", "flush", "-y", "bans")
    assert items(router, "bans") == {}
    router.kamcli_ok("htable", "import", "bans", str(tmp_path / "bans.csv"))
    assert items(router, "bans") == {"1000": ("42", "str"), "temp": ("x", "str"),
                                     "tempi": (5, "int")}
    router.kamcli_ok("htable", "flush", "-y", "bans")
    router.kamcli_ok("htable", "import", "bans", str(tmp_path / "bans.jsonl"))
    assert items(router, "bans")["tempi"] == (5, "int")

    # store, change in memory, reload from SQLite
    router.kamcli_ok("htable", "store", "bans")
    router.kamcli_ok("htable", "sets", "bans", "1000", "changed")
    router.kamcli_ok("htable", "reload", "bans")
    assert items(router, "bans")["1000"] == ("42", "str")

    stats = {row["name"]: row for row in router.kamcli_ok("htable", "stats")}
    assert stats["bans"]["all"] == 3 and stats["bans"]["slots"] == 256
    counters = router.kamcli_ok("stats", "htable:")
    assert counters["htable:bans-items"] == 3 and "htable:bans-hits" in counters


def test_bans_survive_a_restart(router: RouterUnderTest) -> None:
    router.kamcli_ok("htable", "sets", "bans", "192.0.2.7", "fraud")
    router.stop()  # store_on_stop writes the table to SQLite
    router.start()
    assert items(router, "bans") == {"192.0.2.7": ("fraud", "str")}


def sipp_call(router: RouterUnderTest, workdir: Path, scenario: str, uas: Sipp | None) -> None:
    target = uas.address if uas else f"127.0.0.1:{free_port()}"
    uac = Sipp(f"uac-{scenario}-{len(list(workdir.glob('uac-*')))}", scenario, workdir,
               port=free_port(), remote=target, outbound_proxy=router.address, timeout_s=10)
    result = uac.start().wait()
    assert result.ok, result.report() + "\n" + router.process.log_tail()


def test_ban_list_with_sipp(router: RouterUnderTest, tmp_path: Path) -> None:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; `make test` installs it)")
    workdir = tmp_path / "sipp"
    uas = Sipp("uas", "uas.xml", workdir, port=free_port(), calls=2, timeout_s=30).start()
    uas.wait_listening()
    try:
        sipp_call(router, workdir, "uac.xml", uas)  # not banned: the call goes through
        router.kamcli_ok("htable", "sets", "bans", "127.0.0.1", "test ban")
        sipp_call(router, workdir, str(SCENARIOS / "uac_forbidden.xml"), None)
        router.kamcli_ok("htable", "rm", "-y", "bans", "127.0.0.1")
        sipp_call(router, workdir, "uac.xml", uas)  # unbanned: through again
        assert uas.wait().ok
    finally:
        uas.kill()
