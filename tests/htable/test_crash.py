"""The default SQLite persistence bounds what a crash loses: kill -9 a real router and the
changes older than the write-behind interval are there after the restart."""
from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

from support.rpc import rpc_call
from support.wait import wait_until

from .conftest import RouterUnderTest

#: Nothing but persist: the defaults are what is under test.
TABLE = '[[htable]]\nname = "t"\npersist = "sqlite"\n'


def stored_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        try:
            return {key for (key,) in db.execute("SELECT key_name FROM htable")}
        except sqlite3.OperationalError:  # the router created the file, not yet its table
            return set()


def test_kill_9_with_the_default_persistence_loses_only_the_last_moment(tmp_path: Path) -> None:
    router = RouterUnderTest(tmp_path, tables=TABLE,
                             script="def request_route(msg):\n    pass\n").start()
    try:
        rpc_call(router.socket, "htable.sets", "t", "a", "one")
        rpc_call(router.socket, "htable.seti", "t", "b", 2)
        # Written while the router runs, not only at a clean stop: write-behind is on.
        wait_until(lambda: stored_keys(tmp_path / "htable.sqlite") == {"a", "b"},
                   what="the default write-behind storing the changes",
                   detail=router.process.log_tail)
        os.kill(router.process.pid, signal.SIGKILL)
        router.process.stop()
        router.start()
        assert rpc_call(router.socket, "htable.get", "t", "a")["item"]["value"] == "one"
        assert rpc_call(router.socket, "htable.get", "t", "b")["item"]["value"] == 2
    finally:
        router.stop()
