"""OPTIONS probing on a fake clock: who is probed, state changes, events and the time bound.

``FakeTm`` stands in for ``router.send_request``: on the same scheduler it answers 200
after 10 ms for targets that are "up" and calls back 408 after the probe timeout for the
others, as tm does.
"""
from __future__ import annotations

from typing import Any

from kamrouter.modules.dispatcher.flags import DISABLED, state_letters
from kamrouter.modules.dispatcher.health import Origin
from kamrouter.modules.dispatcher.listfile import make_spec
from kamrouter.modules.dispatcher.probing import Prober, parse_reply_codes
from kamrouter.sip import Response
from .bench import Bench

A, B, C = "sip:127.0.0.1:5071", "sip:127.0.0.1:5072", "sip:127.0.0.1:5073"
LIST = f"1 {A} 8 3\n1 {B} 8 2 ping_from=sip:probe@lb.example;obproxy=sip:127.0.0.1:5999\n1 {C} 0 1\n"


class FakeTm:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.down: set[str] = set()
        self.codes: dict[str, int] = {}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, ruri: str, **kwargs: Any) -> None:
        self.sent.append((ruri, {"method": method, **kwargs}))
        on_reply = kwargs["on_reply"]
        scheduler = self.bench.scheduler
        if ruri in self.down:
            scheduler.call_later(kwargs["timeout"], lambda: on_reply(408, None))
        else:
            code = self.codes.get(ruri, 200)
            scheduler.call_later(0.01, lambda: on_reply(code, Response(code, "Whatever")))

    def probed(self) -> list[str]:
        uris = [uri for uri, _ in self.sent]
        self.sent.clear()
        return uris


def make(mode: int, **config: Any) -> tuple[Bench, FakeTm, Prober]:
    config = {"ping_interval": 2.0, "ping_timeout": 1.0, "probing_mode": mode, **config}
    bench = Bench(LIST, **config)
    tm = FakeTm(bench)
    prober = Prober(bench.ds, bench.scheduler, tm)
    prober.start()
    return bench, tm, prober


def advance(bench: Bench, seconds: float, step: float = 0.01) -> None:
    start = bench.clock.now
    steps = max(1, round(seconds / step))
    for i in range(1, steps + 1):
        bench.clock.now = start + seconds * i / steps
        bench.scheduler.fire_due(bench.clock.now)


def letters(bench: Bench) -> list[str]:
    return [state_letters(d.health.flags) for d in bench.ds.list.destinations()]


def test_probe_request_fields() -> None:
    bench, tm, _ = make(1, ping_from="sip:ds@lb.example", default_socket="udp:127.0.0.1:5060")
    bench.scheduler.fire_due(bench.clock.now)
    (a_uri, a), (b_uri, b), (c_uri, c) = tm.sent
    assert (a_uri, a["method"], a["to_uri"], a["from_uri"]) == (A, "OPTIONS", A, "sip:ds@lb.example")
    assert a["dst_uri"] is None and a["socket"] == "udp:127.0.0.1:5060" and a["timeout"] == 1.0
    assert (b["from_uri"], b["dst_uri"]) == ("sip:probe@lb.example", "sip:127.0.0.1:5999")


def test_mode1_down_within_bound_then_up_after_threshold() -> None:
    bench, tm, _ = make(1, probing_threshold=2, inactive_threshold=2)
    advance(bench, 4.5)
    assert letters(bench) == ["AP", "AP", "AP"]
    assert bench.dest(1, C).health.latency.count == 3
    stopped = bench.clock.now
    tm.down.add(B)
    went_down = None
    while went_down is None:
        assert bench.clock.now - stopped < 60, "B never went down"  # fake time: no hang
        advance(bench, 0.01)
        if not bench.dest(1, B).health.usable:
            went_down = bench.clock.now
    assert went_down - stopped <= 2.0 * 2 + 1.0            # interval * threshold + timeout
    assert letters(bench) == ["AP", "IP", "AP"]
    assert bench.events.names() == [("dispatcher:dst-down", B)]
    event = bench.events[0][1]
    assert (event["code"], event["reason"], event["origin"], event["flags"]) == \
        (408, "Request Timeout", "ping", "IP")
    assert bench.dest(1, B).health.latency.timeouts == 2
    tm.down.clear()
    advance(bench, 2.0)
    assert letters(bench)[1] == "IP"                       # one good reply of two
    advance(bench, 2.0)
    assert letters(bench)[1] == "AP"
    assert bench.events.names()[-1] == ("dispatcher:dst-up", B)
    assert bench.stats.get("dispatcher", "set1_probes_failed").value == 2
    assert bench.stats.get("dispatcher", "probes_sent").value == bench.dest(1, A).health.probes_sent * 3


def test_mode0_probes_flagged_targets_until_they_answer() -> None:
    bench, tm, _ = make(0)
    tm.down.add(B)
    bench.scheduler.fire_due(bench.clock.now)
    assert tm.probed() == [A, B]                           # C has no probing flag
    advance(bench, 1.5)
    assert letters(bench) == ["AX", "IP", "AX"]            # A answered: one-shot done
    advance(bench, 2.0)
    assert tm.probed() == [B]                              # B keeps being probed (#2100)
    tm.down.clear()
    advance(bench, 2.0)
    assert letters(bench) == ["AX", "AX", "AX"]
    advance(bench, 4.0)
    assert tm.probed() == [B]                              # the last probe, then none
    assert tm.probed() == []


def test_mode2_probes_only_inactive_probing_targets() -> None:
    bench, tm, _ = make(2)
    bench.scheduler.fire_due(bench.clock.now)
    assert tm.probed() == []
    bench.api.mark_addr("ip", 1, C)
    advance(bench, 2.0)
    assert tm.probed() == [C]
    advance(bench, 0.1)
    assert letters(bench)[2] == "AX"


def test_mode3_keeps_probing() -> None:
    bench, tm, _ = make(3)
    advance(bench, 4.5)
    assert letters(bench) == ["AP", "AP", "AX"]
    assert tm.probed() == [A, B] * 3


def test_reply_codes_and_disabled_targets() -> None:
    assert parse_reply_codes("code=404; class=3") == (frozenset({404}), frozenset({3}))
    bench, tm, _ = make(1, ping_reply_codes="code=404")
    tm.codes = {A: 404, B: 503}
    bench.ds.change_state(bench.dest(1, C), DISABLED, Origin.RPC)
    bench.scheduler.fire_due(bench.clock.now)
    assert tm.probed() == [A, B]
    advance(bench, 0.1)
    assert letters(bench) == ["AP", "IP", "DX"]
    health = bench.dest(1, B).health
    assert (health.last_probe_code, health.last_probe_reason) == (503, "Whatever")


def test_ping_active_off_sends_nothing() -> None:
    bench, tm, _ = make(1)
    bench.ds.ping_active = False
    advance(bench, 5)
    assert tm.probed() == []


def test_a_send_error_counts_as_failure() -> None:
    bench = Bench(LIST, ping_interval=1.0, probing_mode=1)

    def broken(method: str, ruri: str, **kwargs: Any) -> None:
        raise OSError("no route")

    prober = Prober(bench.ds, bench.scheduler, broken)
    prober.start()
    bench.scheduler.fire_due(bench.clock.now)
    assert letters(bench) == ["IP", "IP", "IP"]
    assert bench.dest(1, A).health.last_probe_reason == "Sending keepalive failed: no route"
    prober.stop()
    assert bench.scheduler.next_deadline() is None


def test_reply_for_a_removed_target_changes_nothing() -> None:
    bench, tm, _ = make(1)
    tm.down.add(A)
    bench.scheduler.fire_due(bench.clock.now)
    old = bench.dest(1, A)
    bench.ds.remove(1, A)
    advance(bench, 1.5)
    assert old.health.retired and old.health.flags & 0x0F == 8   # still AP, no event
    assert bench.events == []


def test_interval_zero_means_no_probing() -> None:
    bench, tm, prober = make(1, ping_interval=0)
    advance(bench, 3)
    assert tm.sent == [] and bench.scheduler.next_deadline() is None


def test_a_target_added_at_run_time_is_probed_next_round() -> None:
    bench, tm, _ = make(0)
    bench.scheduler.fire_due(bench.clock.now)
    tm.probed()
    bench.ds.add(make_spec(1, "sip:127.0.0.1:5079", 8, origin="rpc"))   # kamailio#4212
    tm.down.add("sip:127.0.0.1:5079")
    advance(bench, 2.0)
    assert "sip:127.0.0.1:5079" in tm.probed()
    advance(bench, 1.5)
    assert state_letters(bench.flags(1, "sip:127.0.0.1:5079")) == "IP"
