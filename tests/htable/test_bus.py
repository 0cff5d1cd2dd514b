"""Tables shared by the state bus (kamrouter/modules/bus.py, htable/bus_link.py), in process:
two workers' buses whose datagrams this test delivers by hand, so the order is chosen;
the conflict rules (the later write wins per key, increments of one version add up), a
dump for a starting worker, and hostile datagrams."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kamrouter.modules.bus import MAX_DATAGRAM, MAX_QUEUE_BYTES, StateBus
from kamrouter.modules.htable.bus_link import HtableBus
from kamrouter.modules.htable.config import TableConfig
from kamrouter.modules.htable.table import Table
from kamrouter.stats import StatsRegistry

from support.doubles import FakeClock


class Worker:
    def __init__(self, index: int, run_dir: Path, clock: FakeClock, **config: Any) -> None:
        self.stats = StatsRegistry()
        self.bus = StateBus(index, 2, str(run_dir), self.stats, _no_rpc)
        self.table = Table(TableConfig(name="t", **config), clock)
        HtableBus(self.bus, {"t": self.table})

    def deliver_to(self, other: Worker) -> int:
        """Hand what this worker queued for ``other`` over; how many datagrams."""
        (peer,) = self.bus.peers
        sent = 0
        while peer.queue:
            datagram, count = self.bus._pack(peer)
            for _ in range(count):
                peer.queue.popleft()
            other.bus.receive(datagram)
            sent += 1
        return sent

    def counter(self, name: str) -> int:
        return int(self.stats.get("bus", name).value)  # type: ignore[union-attr]


async def _no_rpc(index: int, method: str, params: list[Any]) -> Any:
    raise AssertionError("not used")


def pair(tmp_path: Path, **config: Any) -> tuple[Worker, Worker]:
    clock = FakeClock()
    return Worker(0, tmp_path, clock, **config), Worker(1, tmp_path, clock, **config)


def exchange(a: Worker, b: Worker) -> None:
    a.deliver_to(b)
    b.deliver_to(a)


def test_writes_reach_the_other_worker_in_one_datagram(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    for n in range(100):
        a.table.set(f"k{n}", n)
    a.table.set("s", "text", expire=30)
    assert a.deliver_to(b) == 1  # batched
    assert b.table.get("k99") == 99 and b.table.get("s") == "text"
    assert b.table.expire_left("s") == 30
    assert b.counter("received_messages") == 101 and not b.bus.peers[0].queue  # not echoed
    a.table.delete("k1")
    a.table.set_expire("k2", 5)
    a.deliver_to(b)
    assert b.table.lookup("k1") is None and b.table.expire_left("k2") == 5


def test_concurrent_writes_of_one_key_end_with_the_later_everywhere(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    a.table.set("k", "first")
    b.table.set("k", "second")  # later (a higher stamp), before either heard of the other
    exchange(a, b)
    assert a.table.get("k") == b.table.get("k") == "second"
    b.table.delete("k")
    a.table.set("k", "after the delete")
    exchange(a, b)
    assert a.table.get("k") == b.table.get("k") == "after the delete"
    a.table.set("j", 1)
    exchange(a, b)
    b.table.delete("j")
    a.table.set("j", 2)   # older than b's delete? no: later, so it stays
    b.deliver_to(a)       # the delete arrives first at a, whose later set stays
    a.deliver_to(b)
    assert a.table.get("j") == b.table.get("j") == 2


def test_a_delete_is_not_undone_by_an_older_write_arriving_late(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    a.table.set("k", "old")   # still on its way to b ...
    b.table.set("k", "b's")
    b.table.delete("k")       # ... when b deletes the key
    exchange(a, b)
    assert a.table.lookup("k") is None and b.table.lookup("k") is None


def test_increments_in_both_workers_all_count(tmp_path: Path) -> None:
    a, b = pair(tmp_path, initval=0)
    for _ in range(5):
        a.table.inc("n")
        b.table.inc("n", 2)
    exchange(a, b)
    assert a.table.get("n") == b.table.get("n") == 15
    a.table.set("n", 100)     # an assignment: increments of the old version are dropped
    b.table.inc("n")
    exchange(a, b)
    assert a.table.get("n") == b.table.get("n") == 100
    b.table.inc("n")
    exchange(a, b)
    assert a.table.get("n") == b.table.get("n") == 101


def test_a_flush_removes_what_was_written_before_it(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    a.table.set("x", 1)
    exchange(a, b)
    b.table.flush()
    a.table.set("y", 2)       # after the flush: stays
    exchange(a, b)
    assert a.table.lookup("x") is None and b.table.lookup("x") is None
    assert a.table.get("y") == b.table.get("y") == 2


def test_a_starting_worker_loads_a_dump_and_skips_what_it_holds(tmp_path: Path) -> None:
    a, _ = pair(tmp_path, initval=0)
    a.table.set("k", "v", expire=60)
    a.table.inc("n", 3)
    dump = json.loads(json.dumps(a.bus.dump()))
    fresh = Worker(1, tmp_path, a.table._clock, initval=0)  # type: ignore[arg-type]
    fresh.bus.load(dump)
    assert fresh.table.get("k") == "v" and fresh.table.expire_left("k") == 60
    assert fresh.table.get("n") == 3
    # What queued for it before the dump arrives after it (from its socket): skipped.
    a.deliver_to(fresh)
    assert fresh.table.get("n") == 3 and fresh.counter("received_messages") == 0
    a.table.inc("n")
    a.deliver_to(fresh)
    assert fresh.table.get("n") == 4


def test_garbage_is_counted_and_dropped(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    envelope = '{{"o":0,"p":1,"n":{n},"m":[{m}]}}'
    for garbage in [b"", b"\xff\xfe", b"not json", b"[" * 10000, b"1" * 5000, b"[]",
                    b'{"o":1,"p":1,"n":1,"m":[]}',  # claims to be b itself
                    b'{"o":"0","p":1,"n":1,"m":[]}', b"x" * (MAX_DATAGRAM + 1),
                    envelope.format(n=1, m='["htable",{"h":"nosuch","k":"a","s":1}]').encode(),
                    envelope.format(n=2, m='["htable",{"h":"t","k":"a","v":"99999999999999999999","t":-1,"s":1}]').encode(),
                    envelope.format(n=3, m='["htable",{"h":"t","k":5,"v":"1","t":-1,"s":1}]').encode(),
                    envelope.format(n=4, m='["htable",{"h":"t","k":"a","v":"1","t":-1,"s":1.5}]').encode(),
                    envelope.format(n=5, m='["pike",[1]]').encode(),
                    envelope.format(n=6, m='{"a":1}').encode(),
                    envelope.format(n=7, m="7").encode()]:
        b.bus.receive(garbage)
    assert b.counter("dropped_malformed") == 16
    assert b.table.lookup("a") is None
    # Well-formed messages after the garbage still apply; a gap in the numbers is counted.
    b.bus.receive(envelope.format(n=10, m='["htable",{"h":"t","k":"a","v":"1","t":-1,"s":9}]')
                  .encode())
    assert b.table.get("a") == 1 and b.counter("lost") == 2


def test_a_change_over_the_bound_stays_local_and_is_counted(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    a.table.set("big", "x" * MAX_DATAGRAM)
    a.table.set("small", "y")
    a.deliver_to(b)
    assert b.table.lookup("big") is None and b.table.get("small") == "y"
    assert a.counter("dropped_too_large") == 1 and b.counter("lost") == 0


def test_what_waits_for_a_peer_is_bounded(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    value = "x" * 60000
    for n in range(300):  # 18 MB for a peer that does not read
        a.table.set(f"k{n}", value)
    dropped = a.counter("dropped_queue")
    assert dropped > 0 and a.bus.peers[0].queued_bytes <= MAX_QUEUE_BYTES
    a.table.set("k", "small")  # fits: queued after the gap
    a.deliver_to(b)
    assert b.counter("received_messages") == 301 - dropped
    assert b.counter("lost") == dropped  # the receiver sees the gap
