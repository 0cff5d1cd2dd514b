"""The cyclic garbage collector, kept off the call path.

CPython's collector scans the objects of a generation whenever it runs: once thousands of
transactions wait out their timers, a collection of the young generations scans them all and
stops the event loop for 15–300 ms (``benchmarks/stalls.py`` at 1,250 calls/s), which is
what lifted the router's setup p99 far above its p50. Transactions free themselves by
reference counting (no cycles are left behind), so the collector has nothing to find among
them. Hence:

- at start-up, what exists (modules, script, config) is frozen out of every scan;
- every :data:`FREEZE_EVERY` seconds, what has survived since the last time is frozen too
  (``gc.freeze`` moves the generations' lists in constant time), so a collection never
  scans more than a tenth of a second of calls: the young generation is collected every
  5,000 allocations (a fraction of a millisecond), which finds cycles made and dropped
  meanwhile (an exception and its traceback, a cancelled task);
- frozen objects are still freed by reference counting as usual; only a reference cycle
  that became garbage after it was frozen stays (24 objects after 25,000 calls:
  ``benchmarks/stalls.py --seconds 20`` prints it). For a path that makes such cycles, a
  full pass (unfreeze, collect everything, freeze again; 126 ms with 12,500 transactions
  alive in the same run) runs every
  :data:`FULL_PASS_EVERY` seconds, counted (``core:gc_full_passes``) and logged with what
  it found.
"""
from __future__ import annotations

import gc
import logging
import time

from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler

log = logging.getLogger("kamrouter.gc")

#: Seconds between freezes of what has survived that long.
FREEZE_EVERY = 0.1
#: Seconds between full passes over everything (what leaked into the frozen set).
FULL_PASS_EVERY = 3600.0


def tune_garbage_collector() -> None:
    """Freeze what exists at start-up; collect the young generation every 5,000 allocations
    (the default, 700, wakes the collector for every few messages)."""
    gc.freeze()
    gc.set_threshold(5_000, 20, 100)


class Collector:
    """Freezes the survivors and now and then passes over everything, on the router's
    scheduler."""

    def __init__(self, scheduler: Scheduler, stats: StatsRegistry) -> None:
        self._scheduler = scheduler
        self._full_passes = stats.counter("core", "gc_full_passes")
        self._next_full_pass = 0.0

    def start(self) -> None:
        tune_garbage_collector()
        self._next_full_pass = self._scheduler.clock() + FULL_PASS_EVERY
        self._scheduler.call_later(FREEZE_EVERY, self._freeze)

    def _freeze(self) -> None:
        if self._scheduler.clock() >= self._next_full_pass:
            self.full_pass()
        else:
            gc.freeze()
        self._scheduler.call_later(FREEZE_EVERY, self._freeze)

    def full_pass(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._next_full_pass = self._scheduler.clock() + FULL_PASS_EVERY
        self._full_passes.inc()
        log.info("garbage collector: a full pass took %.0f ms and freed %d objects in "
                 "reference cycles", (time.perf_counter() - started) * 1e3, found)
