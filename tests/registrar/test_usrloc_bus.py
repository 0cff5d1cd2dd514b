"""usrloc (in memory, and beside Redis) and pike's bans (and counts: tests/policy/test_pike_bus.py) shared by the state bus (usrloc/bus_link.py,
pike/bus_link.py), in process: two workers' buses whose datagrams this test delivers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kamrouter.modules.pike.bus_link import PikeBus
from kamrouter.modules.pike.table import PikeTable
from kamrouter.modules.usrloc.bus_link import UsrlocBus
from kamrouter.modules.usrloc.location import Binding, Location
from kamrouter.modules.usrloc.redis_store import RedisLocation
from kamrouter.timers import Scheduler

from support.bus import BusWorker
from support.doubles import FakeClock


class Worker(BusWorker):
    def __init__(self, index: int, run_dir: Path, clock: FakeClock) -> None:
        super().__init__(index, run_dir)
        self.tables: dict[str, Location] = {}
        self.clock = clock
        self.usrloc = UsrlocBus(self.bus, self.tables, self.table)
        self.pike = PikeTable(2, 30, 120, 300, 1000, clock)
        PikeBus(self.bus, self.pike, Scheduler(clock))

    def table(self, name: str) -> Location:
        if name not in self.tables:
            self.tables[name] = Location(name, self.clock)
            self.usrloc.attach(self.tables[name])
        return self.tables[name]

    def contacts(self, aor: str, table: str = "location") -> list[str]:
        return [b.contact for b in self.table(table).bindings(aor)]


def test_bindings_saved_refreshed_and_removed_in_one_worker_reach_the_other(
        tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a, b = Worker(0, tmp_path, clock), Worker(1, tmp_path, clock)
    a.table("location").put("bob", Binding("sip:bob@192.0.2.1", clock() + 600, call_id="c1"))
    a.table("other").put("eve", Binding("sip:eve@192.0.2.9", clock() + 600))
    a.deliver_to(b)
    assert b.contacts("bob") == ["sip:bob@192.0.2.1"] and b.contacts("eve", "other")
    # A refresh through b (the same ruid) reaches a.
    (old,) = b.table("location").bindings("bob")
    clock.now += 1
    b.table("location").put("bob", Binding("sip:bob@192.0.2.1", clock() + 3600, call_id="c1",
                                           ruid=old.ruid), replacing=old)
    b.deliver_to(a)
    (refreshed,) = a.table("location").bindings("bob")
    assert refreshed.expires == clock() + 3600
    # An older change arriving late does not undo it.
    a.bus.receive(json.dumps({"o": 1, "p": b.bus.pid, "n": b.bus.seq + 1, "m": [
        ["usrloc", {"l": "location", "s": ["bob", old.ruid, list(old.as_row()), "del"]}]]})
        .encode())
    assert a.contacts("bob") == ["sip:bob@192.0.2.1"]
    a.table("location").delete("bob", refreshed)
    a.deliver_to(b)
    assert b.contacts("bob") == []
    a.table("other").flush()
    a.deliver_to(b)
    assert b.contacts("eve", "other") == []


def test_a_starting_worker_loads_the_bindings_and_bans(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a = Worker(0, tmp_path, clock)
    a.table("location").put("bob", Binding("sip:bob@192.0.2.1", clock() + 600))
    a.pike.ban("192.0.2.66", 100, "flood")
    fresh = Worker(1, tmp_path, clock)
    fresh.bus.load(json.loads(json.dumps(a.bus.dump())))
    assert fresh.contacts("bob") == ["sip:bob@192.0.2.1"]
    assert fresh.pike.banned("192.0.2.66")


def test_a_ban_in_one_worker_applies_in_the_other_and_so_does_its_end(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a, b = Worker(0, tmp_path, clock), Worker(1, tmp_path, clock)
    for _ in range(31):  # a flood seen by a alone
        a.pike.check("192.0.2.7")
    a.deliver_to(b)
    assert b.pike.banned("192.0.2.7")
    assert b.pike.rows()[0]["leaf_hits_curr"] == 31  # sent before the ban
    b.pike.unban("192.0.2.7")
    b.deliver_to(a)
    assert not a.pike.banned("192.0.2.7")
    for n, bad in enumerate((["not an ip", 10, ""], ["192.0.2.8", -1, ""],
                             ["192.0.2.8", 10, 5], ["192.0.2.8", 10**9, ""], "x"), 1):
        b.bus.receive(json.dumps({"o": 0, "p": 1, "n": n, "m": [["pike", bad]]}).encode())
    assert not b.pike.bans
    assert b.stats.get("bus", "dropped_malformed").value == 5  # type: ignore[union-attr]


class RedisWorker(BusWorker):
    """A worker with db_mode "redis": its link queues its own changes for Redis, the bus
    carries them to the other worker, which holds them for its next re-sync (as
    UsrlocModule wires them)."""

    def __init__(self, index: int, run_dir: Path, clock: FakeClock) -> None:
        super().__init__(index, run_dir)
        self.location = Location("location", clock)
        self.link = RedisLocation(self.location, "ul", 100, _no_redis)
        shared = UsrlocBus(self.bus, {"location": self.location}, lambda name: self.location)
        shared.attach(self.location, self.link.enqueue_change)
        shared.on_applied = lambda name, op, aor, binding: self.link.hold((aor, binding.ruid))


def _no_redis() -> Any:
    raise AssertionError("no Redis in this test")


def test_with_redis_away_a_change_reaches_the_other_worker_and_outlives_its_resync(
        tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a, b = RedisWorker(0, tmp_path, clock), RedisWorker(1, tmp_path, clock)
    b.location.put("bob", Binding("sip:bob@192.0.2.1", clock() + 600, call_id="c1"))
    b.deliver_to(a)
    assert [x.contact for x in a.location.bindings("bob")] == ["sip:bob@192.0.2.1"]
    assert len(b.link.queue) == 1 and not a.link.queue  # b alone sends it to Redis
    # Redis is back; a reads it before b has sent its change: a keeps bob.
    a.link.replace_all([], keep=list(a.link.pending))
    assert [x.contact for x in a.location.bindings("bob")] == ["sip:bob@192.0.2.1"]
    a.link.replace_all([], keep=[])  # held for one re-sync only: Redis has it by the next
    assert a.location.bindings("bob") == []
