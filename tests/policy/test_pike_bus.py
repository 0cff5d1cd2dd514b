"""pike's request counts summed by the state bus (kamrouter/modules/pike/bus_link.py), in
process: two workers' buses whose datagrams this test delivers, one scheduler on a fake
clock for the flushes."""
from __future__ import annotations

import json
from pathlib import Path

from kamrouter.modules.pike.bus_link import FLUSH_INTERVAL, SOURCES_PER_MESSAGE, PikeBus
from kamrouter.modules.pike.table import BLOCKED, NEW_FLOOD, OK, PikeTable
from kamrouter.timers import Scheduler

from support.bus import BusWorker
from support.doubles import FakeClock

SOURCE = "192.0.2.7"


class Worker(BusWorker):
    def __init__(self, index: int, run_dir: Path, clock: FakeClock) -> None:
        super().__init__(index, run_dir)
        self.scheduler = Scheduler(clock)
        # Kamailio's defaults: more than 30 requests in 2 s is a flood.
        self.pike = PikeTable(2, 30, 120, 300, 100_000, clock)
        self.link = PikeBus(self.bus, self.pike, self.scheduler)

    def hits(self, ip: str = SOURCE) -> tuple[int, int]:
        (row,) = [r for r in self.pike.rows("ALL") if r["ip_addr"] == ip]
        return row["leaf_hits_prev"], row["leaf_hits_curr"]


def pair(tmp_path: Path, clock: FakeClock) -> tuple[Worker, Worker]:
    return Worker(0, tmp_path, clock), Worker(1, tmp_path, clock)


def test_a_source_spread_over_two_workers_is_banned_at_the_configured_rate(
        tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a, b = pair(tmp_path, clock)
    for _ in range(15):
        assert a.pike.check(SOURCE) == OK and b.pike.check(SOURCE) == OK
    clock.now += FLUSH_INTERVAL
    for worker in (a, b):
        worker.scheduler.fire_due(clock.now)
    a.deliver_to(b)
    b.deliver_to(a)
    assert a.hits() == b.hits() == (0, 30)
    assert b.pike.check(SOURCE) == NEW_FLOOD  # the 31st of the router, not of b
    b.deliver_to(a)
    assert a.pike.banned(SOURCE) and a.pike.check(SOURCE) == BLOCKED
    assert a.hits() == (0, 32)


def test_the_counts_come_before_the_ban_and_an_unban_forgets_them(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a, b = pair(tmp_path, clock)
    for _ in range(31):  # within one interval: no flush but the ban's
        a.pike.check(SOURCE)
    a.deliver_to(b)
    assert b.pike.banned(SOURCE) and b.hits() == (0, 31)
    a.pike.check("192.0.2.8")  # counted, not yet sent
    b.pike.unban(SOURCE)
    b.deliver_to(a)
    assert not a.pike.banned(SOURCE) and SOURCE not in a.pike.sources
    a.link.flush()
    a.deliver_to(b)
    assert SOURCE not in b.pike.sources and b.hits("192.0.2.8") == (0, 1)


def test_counts_of_the_previous_unit_land_there_older_ones_nowhere(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)  # unit 500
    a, b = pair(tmp_path, clock)
    a.pike.check(SOURCE)
    clock.now += 2  # unit 501: the next check flushes unit 500's count first
    a.pike.check(SOURCE)
    a.link.flush()
    a.deliver_to(b)
    assert b.hits() == (1, 1)
    a.pike.check(SOURCE)
    clock.now += 4
    a.link.flush()
    a.deliver_to(b)
    assert b.hits() == (0, 0)


def test_many_sources_go_in_several_messages_and_a_starting_worker_loads_them(
        tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a, b = pair(tmp_path, clock)
    sources = [f"10.0.{n // 256}.{n % 256}" for n in range(SOURCES_PER_MESSAGE + 10)]
    for ip in sources:
        a.pike.check(ip)
    a.link.flush()
    assert a.bus.sent.value == 2
    a.deliver_to(b)
    assert len(b.pike.sources) == len(sources)
    fresh = Worker(1, tmp_path, clock)
    fresh.bus.load(a.bus.dump())
    assert len(fresh.pike.sources) == len(sources) and fresh.hits(sources[0]) == (0, 1)


def test_malformed_counts_are_dropped(tmp_path: Path) -> None:
    _, b = pair(tmp_path, FakeClock(1000.0))
    bad = [[500, [SOURCE]], ["500", [SOURCE, 1]], [500, [SOURCE, 0]], [500, ["x" * 65, 1]],
           [500, [SOURCE, "1"]], [500]]
    for n, payload in enumerate(bad, 1):
        b.bus.receive(json.dumps({"o": 0, "p": 1, "n": n, "m": [["pike.hits", payload]]})
                      .encode())
    assert not b.pike.sources
    assert b.stats.get("bus", "dropped_malformed").value == len(bad)  # type: ignore[union-attr]
