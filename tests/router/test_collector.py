"""The garbage-collector policy (kamrouter.core.collector) on a fake clock."""
from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from kamrouter.core.collector import FREEZE_EVERY, FULL_PASS_EVERY, Collector
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_survivors_are_frozen_and_a_full_pass_frees_cycles_that_leaked_into_them() -> None:
    now = [0.0]
    scheduler = Scheduler(lambda: now[0])
    stats = StatsRegistry()
    collector = Collector(scheduler, stats)
    collector.start()
    survivor = Cycle()
    watch = weakref.ref(survivor)
    now[0] += FREEZE_EVERY
    scheduler.fire_due()
    assert gc.get_freeze_count() > 0 and not gc.get_count()[0] > 100
    del survivor  # garbage now, but frozen: only the full pass finds it
    gc.collect()
    assert watch() is not None
    now[0] += FULL_PASS_EVERY
    scheduler.fire_due()
    passes = stats.get("core", "gc_full_passes")
    assert passes is not None and passes.value == 1 and watch() is None
    assert len(scheduler) == 1  # and it goes on freezing
