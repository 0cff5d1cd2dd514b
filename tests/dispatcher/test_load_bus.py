"""Two workers' dispatchers joined by the state bus, in process (the test delivers the
datagrams): algorithm 10's call load (load_bus.py) and worker 0's probe results
(bus_link.py) are the same in both."""
from __future__ import annotations

import json
from pathlib import Path

from kamrouter.modules.dispatcher.bus_link import DispatcherBus
from kamrouter.modules.dispatcher.flags import INACTIVE, PROBING, state_letters
from kamrouter.modules.dispatcher.health import Origin
from kamrouter.modules.dispatcher.load_bus import FLUSH_INTERVAL, CallLoadBus

from support.bus import BusWorker

from .bench import Bench, make_msg

A, B = "sip:127.0.0.1:5081", "sip:127.0.0.1:5082"
LIST = f"1 {A}\n1 {B}\n"


class Worker(BusWorker):
    def __init__(self, index: int, run_dir: Path) -> None:
        super().__init__(index, run_dir)
        self.bench = Bench(LIST, call_load_init_expire=30, call_load_expire=3600)
        DispatcherBus(self.bus, self.bench.ds)
        self.load = CallLoadBus(self.bus, self.bench.ds, self.bench.scheduler)

    def deliver_to(self, other: BusWorker) -> None:
        self.load.flush()  # as the timer would, FLUSH_INTERVAL after the first change
        super().deliver_to(other)

    def loads(self) -> dict[str, int]:
        return {d.uri: d.health.load for d in self.bench.ds.list.destinations()}


def test_every_worker_selects_with_the_routers_load_and_any_worker_ends_a_call(
        tmp_path: Path) -> None:
    a, b = Worker(0, tmp_path), Worker(1, tmp_path)
    first = make_msg(call_id="one")
    assert a.bench.api.select_dst(first, 1, 10)
    a.deliver_to(b)
    second = make_msg(call_id="two")
    assert b.bench.api.select_dst(second, 1, 10)
    assert second.dst_uri != first.dst_uri        # b knew a's call
    b.deliver_to(a)
    assert a.loads() == b.loads() == {A: 1, B: 1}
    # The callee's BYE reaches the other worker than the INVITE: the call still ends.
    assert b.bench.api.load_update(make_msg("BYE", call_id="one"))
    b.deliver_to(a)
    assert a.loads() == b.loads() == {first.dst_uri: 0, second.dst_uri: 1}


def test_a_2xx_in_one_worker_keeps_the_call_past_init_expire_in_both(tmp_path: Path) -> None:
    a, b = Worker(0, tmp_path), Worker(1, tmp_path)
    a.bench.api.select_dst(make_msg(call_id="answered"), 1, 10)
    a.bench.api.select_dst(make_msg(call_id="ringing"), 1, 10)
    assert a.bench.ds.calls.confirm("answered", a.bench.clock.now)
    a.deliver_to(b)
    for worker in (a, b):
        worker.bench.clock.now += 31
        assert worker.bench.ds.calls.expire_due(worker.bench.clock.now) == 1
        assert len(worker.bench.ds.calls) == 1


def test_a_release_by_an_older_selection_leaves_the_newer_one(tmp_path: Path) -> None:
    a, b = Worker(0, tmp_path), Worker(1, tmp_path)
    old = make_msg(call_id="challenged")
    a.bench.api.select_dst(old, 1, 10)
    a.deliver_to(b)
    b.bench.api.select_dst(make_msg(call_id="challenged"), 1, 10)  # the INVITE again
    b.deliver_to(a)
    assert not a.bench.ds.calls.release("challenged", owner=old.vars["_dispatcher"].load_owner)
    assert sum(a.loads().values()) == sum(b.loads().values()) == 1


def test_a_starting_worker_loads_the_calls(tmp_path: Path) -> None:
    a = Worker(0, tmp_path)
    for n in range(3):
        a.bench.api.select_dst(make_msg(call_id=f"c{n}"), 1, 10)
    fresh = Worker(1, tmp_path)
    fresh.bus.load(a.bus.dump())
    assert fresh.loads() == a.loads() and sum(fresh.loads().values()) == 3
    assert fresh.bench.api.load_unset(make_msg("BYE", call_id="c0"))


def test_probe_results_of_worker_0_reach_the_other_with_their_latency(tmp_path: Path) -> None:
    a, b = Worker(0, tmp_path), Worker(1, tmp_path)
    dest = a.bench.dest(1, B)
    dest.health.latency.add(40.0, 0.5)
    dest.health.last_probe_code, dest.health.probes_sent = 408, 3
    a.bench.ds.change_state(dest, INACTIVE | PROBING, Origin.PING, 408, "Request Timeout")
    a.deliver_to(b)
    theirs = b.bench.dest(1, B).health
    assert state_letters(theirs.flags) == "IP" and b.bench.events == []
    assert (theirs.latency.estimate, theirs.last_probe_code, theirs.probes_sent) == (40.0, 408, 3)


def test_a_lone_change_goes_at_once_the_next_ones_after_the_interval(
        tmp_path: Path) -> None:
    a, b = Worker(0, tmp_path), Worker(1, tmp_path)
    a.bench.api.select_dst(make_msg(call_id="lone"), 1, 10)
    assert a.bus.sent.value == 1
    for n in range(3):
        a.bench.api.select_dst(make_msg(call_id=f"busy{n}"), 1, 10)
    assert a.bus.sent.value == 1
    a.bench.clock.now += FLUSH_INTERVAL
    a.bench.scheduler.fire_due(a.bench.clock.now)
    assert a.bus.sent.value == 2  # the three in one message
    BusWorker.deliver_to(a, b)
    assert sum(b.loads().values()) == 4


def test_malformed_call_load_messages_are_dropped(tmp_path: Path) -> None:
    b = Worker(1, tmp_path)
    bad = [["a", "x", 1, A, 0, "owner", 9.0], ["a", 5, 1, A, 0, 1, 9.0], ["z", "x"],
           ["r", "x", "1"], ["c", "x"], ["a", "x", "1", A, 0, 1, 9.0]]
    for n, payload in enumerate(bad, 1):
        b.bus.receive(json.dumps({"o": 0, "p": 1, "n": n,
                                  "m": [["dispatcher.load", [payload]]]}).encode())
    assert b.loads() == {A: 0, B: 0}
    assert b.stats.get("bus", "dropped_malformed").value == len(bad)  # type: ignore[union-attr]


def test_a_malformed_probe_result_changes_nothing(tmp_path: Path) -> None:
    b = Worker(1, tmp_path)
    figures = [1.0, 200, "OK", 1, 0, [1, 5.0, 0.0, 5.0, 5.0, 0]]
    bad = [[1, A, 0, 8, [*figures[:5], [1, 5.0]]], [1, A, 0, 8, [1.0, "x", "OK", 1, 0, []]],
           [1, A, 0, "8", figures], [1, A, 0, 8, figures, figures]]
    for n, payload in enumerate(bad, 1):
        b.bus.receive(json.dumps({"o": 0, "p": 1, "n": n,
                                  "m": [["dispatcher", payload]]}).encode())
    health = b.bench.dest(1, A).health
    assert (health.probes_sent, health.latency.count, state_letters(health.flags)) == (0, 0, "AX")
    assert b.stats.get("bus", "dropped_malformed").value == len(bad)  # type: ignore[union-attr]
