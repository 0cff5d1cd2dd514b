"""SQLite load/store/write-behind/reload and static CSV/TOML tables."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from kamrouter.config import ConfigError
from kamcommon.htable_rows import RowError, read_csv, read_json_lines

from support.wait import await_until

from .conftest import Htable


def stored(path: Path, table: str) -> dict[str, tuple[int, str, float]]:
    with sqlite3.connect(path) as db:
        return {key: (kind, value, expires) for key, kind, value, expires in db.execute(
            "SELECT key_name, value_type, key_value, expires FROM htable WHERE table_name = ?",
            (table,))}


async def test_store_then_load_at_start_keeps_types_and_expiry(tmp_path: Path) -> None:
    ht = Htable(tmp_path, {"name": "t", "persist": "sqlite"})
    ht.api.set("t", "15", "fifteen")
    ht.api.set("t", "n", 7, expire=3600)
    ht.api.set("t", "gone", 1, expire=1)
    ht.router.advance(1)
    assert await ht.rpc("htable.store", "t") == "Ok. Htable successfully stored to DB."
    assert set(stored(tmp_path / "htable.sqlite", "t")) == {"15", "n"}
    again = Htable(tmp_path, {"name": "t", "persist": "sqlite"})
    assert again.api.get("t", "15") == "fifteen" and again.api.get("t", "n") == 7
    assert 3590 < again.api.expire_left("t", "n") <= 3600


async def test_keys_and_values_that_are_not_utf8_survive_the_store(tmp_path: Path) -> None:
    """A key taken from a SIP header with a 0xff byte (decoded with surrogateescape) is
    stored and loaded back byte for byte; SQLite alone refuses such text."""
    key, value = b"call-\xff".decode("utf-8", "surrogateescape"), "caf\u00e9 \udcfe"
    ht = Htable(tmp_path, {"name": "t", "persist": "sqlite"})
    ht.api.set("t", key, value)
    ht.api.set("t", "plain", "v")
    assert await ht.rpc("htable.store", "t") == "Ok. Htable successfully stored to DB."
    again = Htable(tmp_path, {"name": "t", "persist": "sqlite"})
    assert again.api.get("t", key) == value and again.api.get("t", "plain") == "v"
    ht.api.delete("t", key)
    assert await ht.rpc("htable.store", "t") == "Ok. Htable successfully stored to DB."
    assert Htable(tmp_path, {"name": "t", "persist": "sqlite"}).api.get("t", key) is None


async def test_stop_stores_and_reload_reads_the_file_again(tmp_path: Path) -> None:
    ht = Htable(tmp_path, {"name": "t", "persist": "sqlite", "db_file": "db/t.sqlite"})
    ht.api.set("t", "k", "v")
    await ht.module.stop()
    with sqlite3.connect(tmp_path / "db/t.sqlite") as db:
        db.execute("UPDATE htable SET key_value = 'edited' WHERE key_name = 'k'")
    assert await ht.rpc("htable.reload", "t") == "Ok. Htable reloaded."
    assert ht.api.get("t", "k") == "edited"


async def test_write_behind_batches_changes_off_the_event_loop(tmp_path: Path) -> None:
    ht = Htable(tmp_path, {"name": "t", "persist": "sqlite", "write_behind": 2.0})
    path = tmp_path / "htable.sqlite"
    ht.api.set("t", "keep", 1)
    ht.api.set("t", "drop", 2)
    async with trio.open_nursery() as nursery:
        await ht.module.start(nursery)
        ht.router.advance(2)
        await await_until(lambda: path.exists() and set(stored(path, "t")) == {"keep", "drop"},
                          "the first batch stored", interval=0.01)
        ht.api.delete("t", "drop")
        ht.api.inc("t", "keep")
        ht.router.advance(2)
        await await_until(lambda: stored(path, "t") == {"keep": (1, "2", 0.0)},
                          "the second batch stored", interval=0.01)
        nursery.cancel_scope.cancel()


async def test_static_csv_and_toml_tables(tmp_path: Path) -> None:
    (tmp_path / "bans.csv").write_text("key,value,type,expires\n10.0.0.1,spam\n"
                                       "10.0.0.2,3,int\n10.0.0.3,x,str,60\n")
    (tmp_path / "routes.toml").write_text('"15" = "gw1"\nweight = 3\n')
    ht = Htable(tmp_path, {"name": "bans", "load_file": "bans.csv"},
                {"name": "routes", "load_file": "routes.toml"})
    assert ht.api.items("bans") == [("10.0.0.1", "spam"), ("10.0.0.2", 3), ("10.0.0.3", "x")]
    assert ht.api.expire_left("bans", "10.0.0.3") == 60
    assert ht.api.get("routes", "15") == "gw1" and ht.api.get("routes", "weight") == 3
    (tmp_path / "bans.csv").write_text("10.9.9.9,new\n")
    assert await ht.rpc("htable.reload", "bans") == "Ok. Htable reloaded."
    assert ht.api.items("bans") == [("10.9.9.9", "new")]
    (tmp_path / "bans.csv").write_text("a,b,float\n")
    code, message = (await ht.rpc("htable.reload", "bans"))[1:]
    assert code == 500 and "bans.csv:1: type 'float' must be 'int' or 'str'" in message
    assert ht.api.items("bans") == [("10.9.9.9", "new")]  # a failed reload changes nothing


def test_bad_static_files_fail_start_up_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("ok,1,int\nbad,x,int\n")
    with pytest.raises(ConfigError, match=r"t\.csv:2: value 'x' of type int"):
        Htable(tmp_path, {"name": "t", "load_file": "t.csv"})
    (tmp_path / "t.toml").write_text("k = 1.5\n")
    with pytest.raises(ConfigError, match=r"t\.toml: k: value must be an integer or a string"):
        Htable(tmp_path, {"name": "t", "load_file": "t.toml"})
    with pytest.raises(ConfigError, match="missing.csv: file not found"):
        Htable(tmp_path, {"name": "t", "load_file": "missing.csv"})


def test_line_formats() -> None:
    assert list(read_csv(['"a,b",1,int,', "c,,str,5"])) == [("a,b", 1, None), ("c", "", 5.0)]
    assert list(read_json_lines(['{"key": "15", "value": "x"}',
                                 '{"key": "n", "value": 2, "expires": 9}'])) == [
        ("15", "x", None), ("n", 2, 9)]
    with pytest.raises(RowError, match="<jsonl>:1: key must be a string"):
        list(read_json_lines(['{"key": 15, "value": "x"}']))
    with pytest.raises(RowError, match="<csv>:1: expected key,value"):
        list(read_csv(["lonely"]))
