"""The destination blocklist shared by the state bus (kamrouter/modules/blocklist_bus.py), in
process: two workers' buses whose datagrams this test delivers."""
from __future__ import annotations

import json
from pathlib import Path

from kamrouter.dns.blocklist import Blocklist
from kamrouter.modules.blocklist_bus import BlocklistBus
from kamrouter.net import Endpoint

from support.bus import BusWorker
from support.doubles import FakeClock

DEAD = Endpoint("udp", "127.0.0.1", 5999)


class Worker(BusWorker):
    def __init__(self, index: int, run_dir: Path, clock: FakeClock) -> None:
        super().__init__(index, run_dir)
        self.blocklist = Blocklist(clock, expire=60)
        BlocklistBus(self.bus, self.blocklist)


def test_a_destination_one_worker_blocks_is_skipped_by_the_other_until_it_expires(
        tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a, b = Worker(0, tmp_path, clock), Worker(1, tmp_path, clock)
    a.blocklist.add(DEAD, "timeout")
    a.deliver_to(b)
    assert b.blocklist.is_blocked(DEAD) and b.blocklist.view()[0][2] == "timeout"
    assert not b.bus.peers[0].queue  # applied, not published again
    fresh = Worker(1, tmp_path, clock)
    fresh.bus.load(json.loads(json.dumps(a.bus.dump())))
    assert fresh.blocklist.is_blocked(DEAD)
    clock.now += 61
    assert not b.blocklist.is_blocked(DEAD) and not fresh.blocklist.is_blocked(DEAD)


def test_a_malformed_entry_is_dropped_and_counted(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    b = Worker(1, tmp_path, clock)
    payloads = (["sctp", "h", 1, 5, ""], ["udp", "h", 0, 5, ""], ["udp", "h", 5, 1e9, ""],
                ["udp", "", 5, 5, ""], ["udp", "h", 5, 5, "x" * 500], "nope")
    for n, payload in enumerate(payloads, 1):
        datagram = json.dumps({"o": 0, "p": 1, "n": n, "m": [["dst_blocklist", payload]]})
        b.bus.receive(datagram.encode())
    assert len(b.blocklist) == 0
    malformed = b.stats.get("bus", "dropped_malformed")
    assert malformed is not None and malformed.value == len(payloads)
