"""End to end: kamrouter with etc/examples/dispatcher_routing.py in front of sipp UASes.

Bounded call counts and a short ping_interval keep this part of the suite short. No test
asserts a duration: waits poll the router's state with a generous deadline; the time bound
of "inactive after ping_interval * probing_threshold + ping_timeout" is checked on a fake
clock in test_probing.py.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamrouter.modules.dispatcher.hashing import ds_hash

from .lab import DispatcherLab

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None,
                                reason="sipp is not installed (Debian package sip-tester)")

#: A live callee's answer to a probe may take a while on a loaded machine: a short interval
#: notices a dead one quickly, a long timeout never takes a slow live one for dead.
PROBING = {"ping_interval": 0.5, "ping_timeout": 3.0, "probing_mode": 1}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[DispatcherLab]:
    dispatcher_lab = DispatcherLab(tmp_path)
    yield dispatcher_lab
    dispatcher_lab.close()


def start(lab: DispatcherLab, names: str, alg: int, weights: dict[str, int] | None = None,
          trace: bool = False) -> None:
    for name in names:
        lab.start_uas(name, trace=trace)
    lab.write_list([f"1 {lab.uri(n)} 8 0 duid={n}" + (f";weight={weights[n]}" if weights else "")
                    for n in names])
    lab.start_router(alg, **PROBING)
    lab.wait_for("all destinations active",
                 lambda: set(lab.states().values()) == {"AP"})


def calls_taken(lab: DispatcherLab, names: str, calls: int) -> dict[str, int]:
    # The caller may finish a call (200 to its BYE received) a moment before the callee's
    # sipp books it as successful: wait until the callees' own counters add up.
    lab.wait_for(f"the callees booking {calls} calls",
                 lambda: sum(lab.uases[name].successful_so_far() for name in names) >= calls)
    return {name: lab.stop_uas(name).successful for name in names}


def test_round_robin_spreads_300_calls_evenly(lab: DispatcherLab) -> None:
    start(lab, "abc", alg=4)
    result = lab.uac(300, rate=150).wait()
    assert result.ok, result.report()
    taken = calls_taken(lab, "abc", 300)
    assert sum(taken.values()) == 300
    assert all(abs(count - 100) <= 2 for count in taken.values()), taken


def test_weight_70_30_over_1000_calls(lab: DispatcherLab) -> None:
    start(lab, "ab", alg=9, weights={"a": 70, "b": 30})
    result = lab.uac(1000, rate=250).wait()
    assert result.ok, result.report()
    taken = calls_taken(lab, "ab", 1000)
    assert sum(taken.values()) == 1000
    assert abs(taken["a"] - 700) <= 50 and abs(taken["b"] - 300) <= 50, taken


@pytest.mark.parametrize("alg", [0, 1])
def test_hash_keeps_a_call_id_or_caller_on_its_kamailio_slot(lab: DispatcherLab, alg: int) -> None:
    start(lab, "abc", alg=alg, trace=True)
    uac = lab.uac(9, rate=50)
    result = uac.wait()
    assert result.ok, result.report()
    slots = {}
    for index, name in enumerate("cba"):      # Kamailio's order: equal priorities reversed
        received = lab.stop_uas(name)
        for invite in received.received("INVITE"):
            (call_id,) = invite.headers("Call-ID")
            slots[call_id] = index
    assert len(slots) == 9
    if alg == 0:
        assert all(slot == ds_hash(call_id) % 3 for call_id, slot in slots.items())
    else:  # every call comes From sip:caller@127.0.0.1:<uac port>
        assert set(slots.values()) == {ds_hash("caller", f"127.0.0.1:{uac.port}") % 3}


def test_dead_destination_goes_inactive_calls_are_rescued_and_it_comes_back(
        lab: DispatcherLab) -> None:
    start(lab, "abc", alg=4)
    # b takes 20 calls, then stops answering anything (calls or probes) without dropping a
    # call in progress.
    lab.stop_uas("b")
    lab.start_uas("b", calls=20)
    b = lab.uri("b")
    uac = lab.uac(300, rate=50)
    lab.wait_for("b inactive", lambda: lab.states()[b] == "IP", timeout=20)
    result = uac.wait()
    assert result.ok, result.report()                   # no call failed, none was lost
    stats = lab.rpc("stats.fetch", "dispatcher:")
    assert stats["dispatcher.set1_failovers"] != "0"    # calls that hit b were rescued
    assert lab.rpc("stats.fetch", "dispatcher:")["dispatcher.inactive_targets"] == "1"

    lab.stop_uas("b")
    lab.start_uas("b")                                   # back on the same port
    lab.wait_for("b active again", lambda: lab.states()[b] == "AP")
    result = lab.uac(30, rate=50).wait()
    assert result.ok, result.report()
    assert lab.stop_uas("b").successful >= 9


def test_reload_under_load_drops_no_call_and_a_bad_list_changes_nothing(
        lab: DispatcherLab) -> None:
    start(lab, "ab", alg=4)
    lab.start_uas("c")
    b, c = lab.uri("b"), lab.uri("c")
    uac = lab.uac(200, rate=50)
    lab.wait_for("calls flowing", lambda: lab.rpc("stats.fetch", "dispatcher:")
                 ["dispatcher.set1_selections"] != "0")
    lab.write_list([f"1 {b} 8", f"1 {c} 8"])                       # a out, c in
    assert lab.rpc("dispatcher.reload") == "Ok. Dispatcher successfully reloaded."
    lab.write_list([f"1 {b} 8", f"1 {c} 8", "1 sip:127.0.0.1:5 8 high"])
    error = lab.rpc("dispatcher.reload")
    assert error["code"] == 500
    assert error["message"] == (f"Reload Failed: {lab.list_path}:3: "
                                "priority 'high' is not an integer")
    assert set(lab.states()) == {b, c}                               # the old list serves on
    result = uac.wait()
    assert result.ok, result.report()
    taken = calls_taken(lab, "abc", 200)
    assert sum(taken.values()) == 200 and taken["c"] > 0 and taken["a"] < 200


def test_call_load_counts_calls_until_their_bye(lab: DispatcherLab) -> None:
    start(lab, "ab", alg=10)

    def loads() -> list[int]:
        listing = lab.rpc("dispatcher.list")
        return [t["DEST"]["RUNTIME"]["DLGLOAD"] for t in listing["RECORDS"][0]["SET"]["TARGETS"]]

    uac = lab.uac(40, rate=100, pause_ms=500)
    lab.wait_for("calls counted on both destinations", lambda: min(loads()) > 0)
    result = uac.wait()
    assert result.ok, result.report()
    # Every BYE released its call (with workers, worker 0 learns of the last ones within the
    # state bus's 20 ms batches: dispatcher/load_bus.py).
    lab.wait_for("every call released", lambda: loads() == [0, 0])
    taken = calls_taken(lab, "ab", 40)
    assert sum(taken.values()) == 40 and min(taken.values()) >= 10


#: Algorithm 10 with no load bookkeeping in the script (no load_update, no load_unset).
BARE_CALL_LOAD_SCRIPT = """
from kamrouter.script import dispatcher, sl, tm

def request_route(msg):
    if not dispatcher.select_dst(msg, 1, 10):
        sl.send_reply(msg, 503, "No destination")
        return
    tm.relay(msg)
"""


def test_call_load_of_a_cancelled_call_goes_without_script_help(lab: DispatcherLab,
                                                                 tmp_path: Path) -> None:
    script = tmp_path / "bare_call_load.py"
    script.write_text(BARE_CALL_LOAD_SCRIPT)
    for name in "ab":
        lab.start_uas(name, scenario="uas_ring_until_cancel.xml")
    lab.write_list([f"1 {lab.uri(n)} 8 0 duid={n}" for n in "ab"])
    lab.start_router(10, script=script, tm={"wait_timer": 200}, **PROBING)
    lab.wait_for("all destinations active", lambda: set(lab.states().values()) == {"AP"})
    result = lab.uac(10, rate=20, scenario="uac_cancel.xml").wait()
    assert result.ok, result.report()
    assert lab.rpc("stats.fetch", "dispatcher:")["dispatcher.set1_selections"] == "10"
    # Each INVITE ended with 487: its transaction's end took the call off its target.
    lab.wait_for("no call counted", lambda: lab.rpc("stats.fetch", "dispatcher:")
                 ["dispatcher.active_calls"] == "0")
