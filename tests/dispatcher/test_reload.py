"""Reload, add and remove: atomic swaps that keep runtime state and in-flight calls."""
from __future__ import annotations

from pathlib import Path

import pytest

from kamrouter.modules.dispatcher.flags import INACTIVE, state_letters
from kamrouter.modules.dispatcher.health import Origin
from kamrouter.modules.dispatcher.listfile import ListError, make_spec
from .bench import Bench, make_msg

A, B, C = "sip:127.0.0.1:5071", "sip:127.0.0.1:5072", "sip:127.0.0.1:5073"


def bench_on_file(tmp_path: Path, text: str, **config: object) -> tuple[Bench, Path]:
    path = tmp_path / "dispatcher.list"
    path.write_text(text)
    bench = Bench(text, list_path=path, **config)
    return bench, path


def test_runtime_state_carries_over_for_targets_that_stay(tmp_path: Path) -> None:
    bench, path = bench_on_file(tmp_path, f"1 {A} 8\n1 {B} 8\n")
    assert [d.uri for d in bench.ds.list.sets[1].targets] == [B, A]   # Kamailio's order
    health_b = bench.dest(1, B).health
    bench.ds.change_state(bench.dest(1, B), INACTIVE | 8, Origin.PING)
    health_b.latency.add(12.0, 0.1)
    health_b.load = 3
    path.write_text(f"1 {A} 8\n1 {B} 8 0 weight=5\n1 {C} 8\n")
    bench.ds.reload()
    assert bench.ds.list.generation == 2
    assert bench.dest(1, B).health is health_b
    assert state_letters(health_b.flags) == "IP" and health_b.load == 3
    assert health_b.latency.count == 1 and bench.dest(1, B).attrs.weight == 5
    assert [d.uri for d in bench.ds.list.sets[1].targets] == [C, B, A]


def test_changed_flags_in_the_list_win(tmp_path: Path) -> None:
    bench, path = bench_on_file(tmp_path, f"1 {A} 8\n1 {B} 8\n")
    path.write_text(f"1 {A} 4\n1 {B} 8\n")
    bench.ds.reload()
    assert state_letters(bench.flags(1, A)) == "DX"
    assert bench.events.names() == [("dispatcher:dst-down", A)]
    assert bench.events[0][1]["origin"] == "reload"


def test_malformed_list_is_rejected_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    bench, path = bench_on_file(tmp_path, f"1 {A} 0 1\n1 {B}\n")
    old = bench.ds.list
    path.write_text(f"1 {A} 0 1\n1 {B}\n1 sip:127.0.0.1:5073 0 x\n")
    with pytest.raises(ListError) as err:
        bench.ds.reload()
    assert err.value.problems == [f"{path}:3: priority 'x' is not an integer"]
    assert bench.ds.list is old
    msg = make_msg()
    assert bench.api.select_dst(msg, 1, 4) and msg.dst_uri == A


def test_in_flight_calls_finish_on_their_old_targets(tmp_path: Path) -> None:
    bench, path = bench_on_file(tmp_path, f"1 {A} 0 3\n1 {B} 0 2\n1 {C} 0 1\n")
    msg = make_msg()
    bench.api.select_dst(msg, 1, 8)
    assert msg.dst_uri == A
    path.write_text(f"1 {B} 0 2\n1 {C} 0 1\n")              # A and its place in line gone
    bench.ds.reload()
    assert bench.api.next_dst(msg) and msg.dst_uri == B     # the call's own failover list
    assert bench.api.mark_dst(msg, "ip")                    # marks B as listed now
    assert state_letters(bench.flags(1, B)) == "IP"
    assert bench.api.next_dst(msg) and msg.dst_uri == C
    fresh = make_msg(call_id="new")
    assert bench.api.select_dst(fresh, 1, 8) and fresh.dst_uri == C


def test_add_and_remove_change_the_running_sets(tmp_path: Path) -> None:
    bench, path = bench_on_file(tmp_path, f"1 {A}\n")
    bench.ds.add(make_spec(2, B, 8, 3, "duid=x", origin="rpc"))
    assert [d.uri for d in bench.ds.list.sets[2].targets] == [B]
    assert bench.ds.remove(2, B) == 1 and 2 not in bench.ds.list.sets
    assert bench.ds.remove(2, B) == 0
    bench.ds.add(make_spec(1, C, origin="rpc"))
    bench.ds.reload()                                       # in-memory changes are dropped
    assert [d.uri for d in bench.ds.list.sets[1].targets] == [A]


def test_same_uri_on_two_sockets_is_two_targets(tmp_path: Path) -> None:
    bench, path = bench_on_file(
        tmp_path, f"1 {A} 8 0 socket=udp:127.0.0.1:5060\n1 {A} 8 0 socket=tcp:127.0.0.1:5060\n")
    first, second = bench.ds.list.sets[1].targets
    bench.ds.change_state(second, INACTIVE, Origin.RPC)
    bench.ds.reload()
    again = bench.ds.list.sets[1].targets
    assert again[0].health is first.health and again[1].health is second.health
    assert [state_letters(d.health.flags)[0] for d in again] == ["A", "I"]


def test_initial_events_announce_new_targets(tmp_path: Path) -> None:
    bench, path = bench_on_file(tmp_path, f"1 {A}\n1 {B} 1\n", initial_events=True)
    assert sorted(bench.events.names()) == [("dispatcher:dst-down", B), ("dispatcher:dst-up", A)]
    assert bench.events[0][1]["origin"] == "reload"
    bench.events.clear()
    bench.ds.reload()
    assert bench.events.names() == []                       # nothing new
    path.write_text(f"1 {A}\n1 {B} 1\n1 {C}\n")
    bench.ds.reload()
    assert bench.events.names() == [("dispatcher:dst-up", C)]


def test_toml_destinations_stay_across_reloads(tmp_path: Path) -> None:
    path = tmp_path / "d.list"
    path.write_text(f"1 {A}\n")
    bench = Bench("", list_path=path, destination=[{"setid": 5, "uri": C}])
    bench.ds.reload()
    assert sorted(bench.ds.list.sets) == [1, 5]
