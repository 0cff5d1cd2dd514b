"""Where call setup waits under a steady load, in process: the longest pauses of the event
loop and what caused them.

A call is only as fast as the longest thing the router does before it reads the call's
INVITE. This runs ``--rate`` calls per second of *simulated* time for ``--seconds`` through
the router of ``benchmarks/pipeline.py`` (the default script, no sockets), on a clock that
advances with the calls, so transactions live out their wait states and timers fire as in a
real run. It times every message handed to the router and every batch of due timers, and
notes what ran inside them: cyclic-GC collections (by generation) and rebuilds of the timer
heap (there is none since timers live in buckets). The longest ones are what a call arriving at that moment waits for on top of its own
processing: a cause listed there is what lifts the setup p99 of ``benchmarks/cps.py``.

    .venv/bin/python benchmarks/stalls.py [--rate 1250] [--seconds 60] [--top 10]
"""
from __future__ import annotations

import argparse
import gc
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import pipeline
from pipeline import CALLEE, CALLER, answer, in_dialog, invite

from kamrouter.sip import parse


#: Units of work slower than this are kept with their causes (seconds).
LONG = 0.002


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pauses:
    """Wall time of each unit of work, and what happened inside the current one."""

    #: Every unit's wall time (an array: a list of floats would itself feed the GC).
    durations: array[float] = field(default_factory=lambda: array("d"))
    #: The units longer than LONG, with what ran inside them.
    long: list[tuple[float, str, str]] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    gc_started: float = 0.0
    gc_total: dict[int, list[float]] = field(default_factory=dict)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.gc_started = time.thread_time()
            return
        spent = time.thread_time() - self.gc_started
        self.gc_total.setdefault(info["generation"], []).append(spent)
        self.causes.append(f"gc gen{info['generation']} {spent * 1e3:.1f} ms "
                           f"({info['collected']:,} collected)")

    def timed(self, what: str, work: Callable[..., object], *args: object) -> None:
        self.causes.clear()
        started = time.thread_time()
        work(*args)
        spent = time.thread_time() - started
        self.durations.append(spent)
        if spent > LONG:
            self.long.append((spent, what, ", ".join(self.causes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1250, help="calls per simulated second")
    parser.add_argument("--seconds", type=int, default=60, help="simulated seconds")
    parser.add_argument("--policy", choices=("router", "young-scans"), default="router",
                        help="the router's garbage collector policy (kamrouter.core.collector)"
                             ", or the one before it, to compare")
    parser.add_argument("--top", type=int, default=10, help="how many of the longest to show")
    args = parser.parse_args()

    clock = SimulatedClock()
    time.monotonic = clock  # the router reads its clock from here when it is built
    router, wire, proxy = pipeline.build_router()
    if args.policy == "router":
        router.collector.start()  # as the router does once it is ready
    else:  # what the router did before: start-up frozen, young generations scanned
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
    pauses = Pauses()
    gc.callbacks.append(pauses.on_gc)
    receive = router.proxy.on_message
    step = 1.0 / args.rate
    # Each call is one INVITE, its 180 and 200 and the ACK at once, and its BYE and 200 one
    # simulated second later (a short call): what is alive is what a real run holds.
    pending_byes: list[tuple[float, int, str]] = []
    for n in range(args.rate * args.seconds):
        clock.now += step
        pauses.timed("INVITE", receive, invite(n, proxy), CALLER, proxy)
        forwarded = wire.last_to(CALLEE)
        for status in (180, 200):
            pauses.timed(f"{status}", receive, answer(forwarded, status, n), CALLEE, proxy)
        route = parse(forwarded).get("Record-Route") or ""
        pauses.timed("ACK", receive, in_dialog("ACK", n, 1, route, f"z9hG4bK-c{n}-2"),
                     CALLER, proxy)
        pending_byes.append((clock.now + 1.0, n, route))
        while pending_byes and pending_byes[0][0] <= clock.now:
            _, m, bye_route = pending_byes.pop(0)
            pauses.timed("BYE", receive, in_dialog("BYE", m, 2, bye_route, f"z9hG4bK-c{m}-3"),
                         CALLER, proxy)
            pauses.timed("200 BYE", receive, answer(wire.last_to(CALLEE), 200, m),
                         CALLEE, proxy)
        pauses.timed("timers", router.scheduler.fire_due, clock.now)
        wire.sent.clear()

    spent = sorted(pauses.durations)

    def at(share: float) -> float:
        return spent[min(len(spent) - 1, int(share * len(spent)))] * 1e3

    print(f"{args.rate} calls/s for {args.seconds} simulated s: {len(spent):,} units of work, "
          f"{len(router.tm):,} transactions at the end, {len(router.scheduler):,} timers")
    print(f"per unit: p50 {at(0.5):.3f} ms, p99 {at(0.99):.3f} ms, p99.9 {at(0.999):.3f} ms, "
          f"max {spent[-1] * 1e3:.1f} ms; busy {sum(spent) / args.seconds:.0%} of one core")
    for generation, runs in sorted(pauses.gc_total.items()):
        print(f"gc gen{generation}: {len(runs)} collections, longest {max(runs) * 1e3:.1f} ms, "
              f"{sum(runs) * 1e3:.0f} ms in all")
    # What the collector's hourly full pass would cost now, and what it would find.
    gc.unfreeze()
    started = time.perf_counter()
    found = gc.collect()
    print(f"a full pass now: {(time.perf_counter() - started) * 1e3:.0f} ms, "
          f"{found} objects in reference cycles")
    print(f"the {args.top} longest:")
    for seconds, what, causes in sorted(pauses.long, reverse=True)[:args.top]:
        print(f"  {seconds * 1e3:7.1f} ms  {what:8} {causes}")


if __name__ == "__main__":
    main()
