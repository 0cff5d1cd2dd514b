"""The script API: names, errors, iteration and per-key locks."""
from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from kamrouter.modules.htable.api import NoSuchTable

from .conftest import Htable


def test_unknown_table_names_the_defined_ones(tmp_path: Path) -> None:
    ht = Htable(tmp_path, {"name": "bans"})
    with pytest.raises(NoSuchTable, match="no htable named 'bams' \\(defined: bans"):
        ht.api.get("bams", "k")
    with pytest.raises(NoSuchTable):
        ht.api.set("bams", "k", 1)


def test_script_calls(tmp_path: Path) -> None:
    ht = Htable(tmp_path, {"name": "t", "initval": 0})
    api = ht.api
    api.set("t", "10.0.0.1", "spam", expire=30)
    api.set("t", "10.0.0.2", "spam")
    assert api.has("t", "10.0.0.1") and not api.has("t", "x")
    assert api.inc("t", "calls") == 1 and api.dec("t", "calls", 5) == -4
    assert api.expire_left("t", "10.0.0.1") == 30
    assert api.set_expire("t", "10.0.0.2", 10) and api.expire_left("t", "10.0.0.2") == 10
    assert api.count_name("t", "%~10.") == 2 and api.count_value("t", "==spam") == 2
    for key, _ in api.items("t", "%~10."):  # deleting while iterating a snapshot is fine
        api.delete("t", key)
    assert api.items("t") == [("calls", -4)]
    assert api.delete_value("t", "eq-4") == 1 and api.get("t", "calls") == 0


async def test_lock_serialises_read_modify_write_across_awaits(tmp_path: Path) -> None:
    ht = Htable(tmp_path, {"name": "t"})
    api = ht.api
    api.set("t", "n", 0)

    async def add_one() -> None:
        async with api.lock("t", "n"):
            value = api.get("t", "n")
            await trio.sleep(0)  # e.g. an HTTP lookup between read and write
            async with api.lock("t", "n"):  # re-entrant in the same task
                api.set("t", "n", value + 1)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(add_one)
    assert api.get("t", "n") == 20
    assert len(api._locks) == 0  # nobody holds or waits: nothing kept


async def test_lock_is_per_key(tmp_path: Path) -> None:
    ht = Htable(tmp_path, {"name": "t"})
    api = ht.api
    order: list[str] = []

    async def hold(key: str, release: trio.Event) -> None:
        async with api.lock("t", key):
            order.append(f"got {key}")
            await release.wait()

    first, second = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, "a", first)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(hold, "b", second)
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["got a", "got b"]
        first.set()
        second.set()
