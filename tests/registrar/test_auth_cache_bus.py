"""The routing API's HA1 cache shared by the state bus (kamrouter/modules/auth/cache_bus.py),
in process: two workers' buses whose datagrams this test delivers."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from kamrouter.modules.auth.cache import Ha1Cache
from kamrouter.modules.auth.cache_bus import CHANNEL, CacheBus
from kamrouter.modules.auth.subscribers import Subscriber

from support.bus import BusWorker

ALICE = Subscriber("alice", "example.com", "a" * 32, "", "b" * 64)


class Worker(BusWorker):
    def __init__(self, index: int, run_dir: Path) -> None:
        super().__init__(index, run_dir)
        self.cache = Ha1Cache(300, 30, 10, 2)
        self.link = CacheBus(self.bus, self.cache)

    def remember(self, key: tuple[str, str], found: Subscriber | None, now: float) -> None:
        self.link.put(key, self.cache.put(key, found, now))


def test_an_answer_one_worker_cached_serves_the_other_until_it_expires(tmp_path: Path) -> None:
    a, b = Worker(0, tmp_path), Worker(1, tmp_path)
    a.remember(("alice", "example.com"), ALICE, 1000.0)
    a.remember(("mallory", "example.com"), None, 1000.0)
    a.deliver_to(b)
    assert b.cache.get(("alice", "example.com"), 1299.0) == (ALICE, 1300.0)
    assert b.cache.get(("mallory", "example.com"), 1029.0) == (None, 1030.0)
    assert b.cache.get(("alice", "example.com"), 1300.0) is None
    b.link.flush(("alice", "example.com"))
    b.deliver_to(a)
    assert a.cache.get(("alice", "example.com"), 1001.0) is None
    assert len(a.cache) == 1
    fresh = Worker(1, tmp_path)
    fresh.bus.load(json.loads(json.dumps(a.bus.dump())))
    assert fresh.cache.get(("mallory", "example.com"), 1001.0) == (None, 1030.0)
    a.link.flush(None)
    a.deliver_to(b)
    assert len(b.cache) == 0


def test_the_bounds_hold_for_what_other_workers_send(tmp_path: Path) -> None:
    a, b = Worker(0, tmp_path), Worker(1, tmp_path)
    for n in range(5):
        a.remember((f"nobody{n}", "example.com"), None, 1000.0)
    a.deliver_to(b)
    assert len(b.cache) == 2  # api_negative_cache_size


@pytest.mark.parametrize("payload", [
    "x", [1], ["alice"], ["", "example.com"], ["a" * 257, "example.com"],
    ["alice", "example.com", ["A" * 32, ""], 5.0], ["alice", "example.com", ["", ""], 5.0],
    ["alice", "example.com", ["a" * 31, ""], 5.0], ["alice", "example.com", None, "5"],
    ["alice", "example.com", None, True], ["alice", "example.com", None, float("inf")],
    ["alice", "example.com", {"ha1": "a" * 32}, 5.0], ["alice", 7, None, 5.0]])
def test_a_malformed_change_is_dropped_and_names_no_value(
        tmp_path: Path, payload: object, caplog: pytest.LogCaptureFixture) -> None:
    b = Worker(1, tmp_path)
    datagram = json.dumps({"o": 0, "p": 1, "n": 1, "m": [[CHANNEL, payload]]})
    with caplog.at_level(logging.WARNING):
        b.bus.receive(datagram.encode())
    assert b.stats.get("bus", "dropped_malformed").value == 1 and len(b.cache) == 0
    assert "A" * 32 not in caplog.text and "a" * 31 not in caplog.text
