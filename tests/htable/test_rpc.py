"""htable.* through the real JSON-RPC dispatcher: Kamailio's shapes, messages and errors."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from kamrouter.config import ConfigError

from support.doubles import StandInRouter

from .conftest import Htable, tables

KEY_SET = "Ok. Key set to new value."


@pytest.fixture
def ht(tmp_path: Path) -> Htable:
    return Htable(tmp_path, {"name": "a", "size": 4},
                  {"name": "b", "autoexpire": 60, "initval": 0})


async def test_set_and_get_shapes(ht: Htable) -> None:
    assert await ht.rpc("htable.sets", "a", "name", "alice") == KEY_SET
    assert await ht.rpc("htable.seti", "a", "x", 1) == KEY_SET
    assert await ht.rpc("htable.get", "a", "name") == {
        "item": {"name": "name", "value": "alice", "flags": 2, "expire": "NEVER"}}
    assert await ht.rpc("htable.get", "a", "x") == {
        "item": {"name": "x", "value": 1, "flags": 0, "expire": "NEVER"}}


async def test_numeric_keys_need_no_prefix_and_stay_strings(ht: Htable) -> None:
    assert await ht.rpc("htable.sets", "a", 15, 42) == KEY_SET  # int key and value: text
    item = (await ht.rpc("htable.get", "a", "15"))["item"]
    assert item["value"] == "42" and item["flags"] == 2
    assert ht.api.get("a", "15") == "42"


async def test_expire_is_local_time_text(ht: Htable) -> None:
    before = time.time()
    assert await ht.rpc("htable.setxs", "a", "k", "v", 3600) == KEY_SET
    expire = (await ht.rpc("htable.get", "a", "k"))["item"]["expire"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", expire)
    stamp = time.mktime(time.strptime(expire, "%Y-%m-%d %H:%M:%S"))
    assert before + 3598 <= stamp <= time.time() + 3601


async def test_setex_setxi_and_expiry_through_the_scheduler(ht: Htable) -> None:
    await ht.rpc("htable.seti", "a", "k", 7)
    assert await ht.rpc("htable.setex", "a", "k", 5) == "Ok"
    assert await ht.rpc("htable.setxi", "a", "n", 9, 2) == KEY_SET
    ht.router.advance(2)
    assert await ht.rpc("htable.get", "a", "n") == (
        "error", 500, "Key name doesn't exist in htable.")
    ht.router.advance(3)
    assert ht.router.events == [
        ("htable:expired:a", {"table": "a", "key": "n", "value": 9}),
        ("htable:expired:a", {"table": "a", "key": "k", "value": 7})]
    assert ht.router.stats.get("htable", "a-expired").value == 2


async def test_errors(ht: Htable) -> None:
    assert await ht.rpc("htable.get", "nope", "k") == ("error", 500, "No such htable")
    assert await ht.rpc("htable.get", "a", "k") == (
        "error", 500, "Key name doesn't exist in htable.")
    assert await ht.rpc("htable.delete", "a", "k") == ("error", 404, "Key not found in htable.")
    assert await ht.rpc("htable.setex", "a", "k", 5) == ("error", 404, "Key not found in htable.")
    assert (await ht.rpc("htable.seti", "a", "k", "12"))[1] == -32602
    assert "'value' must be an integer" in ht.error_data
    assert (await ht.rpc("htable.get", "a"))[1] == -32602
    assert "htable.get(table, key)" in ht.error_data
    assert await ht.rpc("htable.setxi", "a", "k", 1, -1) == (
        "error", 400, "Invalid expire value -1 (seconds, must be >= 0)")
    code, message = (await ht.rpc("htable.seti", "a", "k", 1 << 64))[1:]
    assert code == 400 and "64-bit" in message
    assert (await ht.rpc("htable.reload", "a"))[1:] == (
        500, "No htable db_url: table 'a' has no persist, load_file or Redis backend to "
             "reload from")
    assert (await ht.rpc("htable.store", "a"))[1] == 500


async def test_delete_and_flush(ht: Htable) -> None:
    await ht.rpc("htable.seti", "a", "k", 1)
    assert await ht.rpc("htable.delete", "a", "k") == "Ok. Key deleted."
    await ht.rpc("htable.seti", "a", "k", 1)
    assert await ht.rpc("htable.flush", "a") == "Ok. Htable flushed."
    assert await ht.rpc("htable.dump", "a") == []


async def test_dump_buckets_and_match(ht: Htable) -> None:
    for key in ("alice", "bob", "carol", "10.0.0.1"):
        await ht.rpc("htable.sets", "a", key, key.upper())
    await ht.rpc("htable.setxi", "a", "n", 1, 30)
    dump = await ht.rpc("htable.dump", "a")
    assert all(0 <= bucket["entry"] < 16 and bucket["size"] == len(bucket["slot"])
               for bucket in dump)
    assert [b["entry"] for b in dump] == sorted(b["entry"] for b in dump)
    items = {i["name"]: i for b in dump for i in b["slot"]}
    assert items["bob"] == {"name": "bob", "value": "BOB", "type": "str", "expires_in": None}
    assert items["n"] == {"name": "n", "value": 1, "type": "int", "expires_in": 30}
    matched = await ht.rpc("htable.dump", "a", "%~10.")
    assert [i["name"] for b in matched for i in b["slot"]] == ["10.0.0.1"]
    assert (await ht.rpc("htable.dump", "a", "~~("))[1] == 400
    # An operator's pathological pattern is answered, not a stalled event loop (RE2).
    await ht.rpc("htable.sets", "a", "a" * 5000 + "b", "long")
    await ht.rpc("htable.sets", "a", "banana", "ends in a")
    matched = await ht.rpc("htable.dump", "a", "~~(a+)+$")
    assert [i["name"] for b in matched for i in b["slot"]] == ["banana"]


async def test_list_tables_and_stats(ht: Htable) -> None:
    await ht.rpc("htable.seti", "b", "x", 1)
    assert await ht.rpc("htable.listTables") == [
        {"name": "a", "dbtable": "", "dbmode": 0, "expire": 0, "updateexpire": 1, "size": 16,
         "dmqreplicate": 0, "backend": "memory", "items": 0},
        {"name": "b", "dbtable": "", "dbmode": 0, "expire": 60, "updateexpire": 1, "size": 256,
         "dmqreplicate": 0, "backend": "memory", "items": 1}]
    assert await ht.rpc("htable.stats") == [
        {"name": "a", "slots": 16, "all": 0, "min": 0, "max": 0},
        {"name": "b", "slots": 256, "all": 1, "min": 0, "max": 1}]


async def test_stats_group(ht: Htable) -> None:
    ht.api.set("a", "k", 1)
    ht.api.get("a", "k")
    ht.api.get("a", "other")
    stats = {f"{s.group}:{s.name}": s.value for s in ht.router.stats.select("htable:")}
    assert stats["htable:a-items"] == 1
    assert (stats["htable:a-hits"], stats["htable:a-misses"], stats["htable:a-expired"]) == (
        1, 1, 0)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    from kamrouter.config import build_section
    from kamrouter.modules.htable.config import TableConfig

    problems: list[str] = []
    build_section(TableConfig, {"size": 40, "autoexpire": -1, "backend": "redis",
                                "persist": "sqlite", "updateexpire": 1}, "htable[0]", problems)
    text = "\n".join(problems)
    for fragment in ("htable[0].updateexpire: expected boolean", "htable[0].name: missing",
                     "size: must be between 2 and 31 (log2", "autoexpire: must be between 0 and",
                     "persist: not available with backend = \"redis\""):
        assert fragment in text
    with pytest.raises(ConfigError, match=r"htable\[1\].name: 'a' is defined twice"):
        from kamrouter.core.settings import Settings
        from kamrouter.modules.htable import HtableModule
        HtableModule(StandInRouter(Settings(base_dir=tmp_path)),
                     tables({"name": "a"}, {"name": "a"}))


async def test_in_a_worker_other_than_0_an_expiry_raises_no_event(ht: Htable) -> None:
    ht.router.worker_index = 1  # worker 0 runs it once for the router
    assert await ht.rpc("htable.setxi", "a", "n", 9, 2) == KEY_SET
    ht.router.advance(3)
    assert await ht.rpc("htable.get", "a", "n") == (
        "error", 500, "Key name doesn't exist in htable.")
    assert ht.router.events == []
