"""The one timer heap (kamrouter.timers), driven by hand."""
from __future__ import annotations

from kamrouter.core.router import Router
from kamrouter.core.settings import Settings
from kamrouter.timers import COMPACT_AFTER, Scheduler


def test_timers_fire_in_deadline_order_and_cancelled_ones_never() -> None:
    scheduler = Scheduler(lambda: 0.0)
    fired: list[str] = []
    scheduler.call_at(2.0, lambda: fired.append("b"))
    scheduler.call_at(1.0, lambda: fired.append("a"))
    scheduler.call_at(1.5, lambda: fired.append("never")).cancel()
    assert len(scheduler) == 2 and scheduler.next_deadline() == 1.0
    assert scheduler.fire_due(1.9) == 1 and fired == ["a"]
    assert scheduler.fire_due(5.0) == 1 and fired == ["a", "b"]
    assert len(scheduler) == 0 and scheduler.next_deadline() is None


def test_cancelled_timers_are_compacted_away_and_the_rest_still_fire_in_order() -> None:
    scheduler = Scheduler(lambda: 0.0)
    fired: list[int] = []
    timers = [scheduler.call_at(100.0 + n, lambda n=n: fired.append(n))
              for n in range(COMPACT_AFTER * 2)]
    for timer in timers[::2]:
        timer.cancel()
        timer.cancel()  # twice counts once
    # Half of the heap was cancelled: the next cancellation makes it the majority.
    timers[1].cancel()
    assert len(scheduler._heap) == len(scheduler) == COMPACT_AFTER - 1
    scheduler.fire_due(1e9)
    assert fired == list(range(3, COMPACT_AFTER * 2, 2))


def test_a_callback_may_cancel_enough_timers_to_compact_the_heap() -> None:
    scheduler = Scheduler(lambda: 0.0)
    later = [scheduler.call_at(50.0, lambda: None) for _ in range(COMPACT_AFTER * 2)]
    fired: list[str] = []

    def cancel_all() -> None:
        for timer in later:
            timer.cancel()

    scheduler.call_at(1.0, cancel_all)
    scheduler.call_at(2.0, lambda: fired.append("after"))
    assert scheduler.fire_due(10.0) == 2 and fired == ["after"]
    assert len(scheduler) == 0


def test_the_sleeper_is_woken_only_for_an_earlier_deadline_and_ties_fire_in_order() -> None:
    scheduler = Scheduler(lambda: 0.0)
    wakes: list[float] = []
    scheduler.on_earlier_deadline = lambda: wakes.append(scheduler.next_deadline() or 0)
    fired: list[str] = []
    scheduler.call_at(5.0, lambda: fired.append("first at 5"))
    scheduler.call_at(9.0, lambda: fired.append("at 9"))  # later: the sleeper may sleep on
    scheduler.call_at(5.0, lambda: fired.append("second at 5"))  # a tie: not earlier either
    scheduler.call_at(2.0, lambda: fired.append("at 2"))
    assert wakes == [5.0, 2.0]
    scheduler.fire_due(10.0)
    assert fired == ["at 2", "first at 5", "second at 5", "at 9"]


def test_a_failing_callback_goes_to_on_error_and_the_other_timers_still_fire() -> None:
    scheduler = Scheduler(lambda: 0.0)
    fired: list[str] = []
    errors: list[Exception] = []
    scheduler.on_error = lambda timer, exc: errors.append(exc)
    scheduler.call_at(1.0, lambda: fired.append("a"))
    scheduler.call_at(1.5, lambda: 1 / 0)
    scheduler.call_at(2.0, lambda: fired.append("b"))
    assert scheduler.fire_due(3.0) == 3
    assert fired == ["a", "b"] and isinstance(errors[0], ZeroDivisionError)


def test_without_on_error_a_failing_callback_propagates() -> None:
    scheduler = Scheduler(lambda: 0.0)
    scheduler.call_at(1.0, lambda: 1 / 0)
    try:
        scheduler.fire_due(2.0)
    except ZeroDivisionError:
        return
    raise AssertionError("the error was swallowed")


def test_the_router_counts_a_failing_timer_and_goes_on() -> None:
    router = Router(Settings())
    fired: list[str] = []
    router.scheduler.call_at(0.0, lambda: 1 / 0)
    router.scheduler.call_at(0.0, lambda: fired.append("next"))
    router.scheduler.fire_due(1.0)
    stat = router.stats.get("core", "drops_internal_error_timer")
    assert stat is not None and stat.value == 1 and fired == ["next"]
