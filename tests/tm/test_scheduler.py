"""The one timer heap (kamrouter.timers), driven by hand."""
from __future__ import annotations

from kamrouter.core.router import Router
from kamrouter.core.settings import Settings
from kamrouter.timers import SLOT, Scheduler


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


def test_cancelled_timers_leave_nothing_behind_and_the_rest_still_fire_in_order() -> None:
    scheduler = Scheduler(lambda: 0.0)
    fired: list[int] = []
    timers = [scheduler.call_at(100.0 + n * SLOT / 4, lambda n=n: fired.append(n))
              for n in range(4000)]
    for timer in timers[::2]:
        timer.cancel()
        timer.cancel()  # twice counts once
    assert len(scheduler) == 2000
    for timer in timers[1:400:2]:
        timer.cancel()
    assert sum(map(len, scheduler._buckets.values())) == len(scheduler) == 1800
    assert scheduler.next_deadline() == 100.0 + 401 * SLOT / 4
    scheduler.fire_due(1e9)
    assert fired == list(range(401, 4000, 2))
    assert not scheduler._buckets and len(scheduler) == 0


def test_a_callback_may_cancel_or_arm_timers_in_the_bucket_being_fired() -> None:
    scheduler = Scheduler(lambda: 0.0)
    fired: list[str] = []
    same_bucket = [scheduler.call_at(1.0 + SLOT / 10, lambda: fired.append("cancelled"))
                   for _ in range(100)]

    def cancel_and_arm() -> None:
        for timer in same_bucket:
            timer.cancel()
        scheduler.call_at(1.0, lambda: fired.append("armed now, due now"))
        scheduler.call_at(1.0 + SLOT / 2, lambda: fired.append("armed now, due later"))

    scheduler.call_at(1.0, cancel_and_arm)
    scheduler.call_at(1.0 + SLOT / 5, lambda: fired.append("after"))
    assert scheduler.fire_due(1.0 + SLOT / 4) == 3
    assert fired == ["armed now, due now", "after"] and len(scheduler) == 1
    assert scheduler.next_deadline() == 1.0 + SLOT / 2
    assert scheduler.fire_due(2.0) == 1 and fired[-1] == "armed now, due later"
    assert len(scheduler) == 0 and scheduler.next_deadline() is None


def test_only_what_is_due_fires_from_the_bucket_of_now() -> None:
    scheduler = Scheduler(lambda: 0.0)
    fired: list[float] = []
    for deadline in (5.004, 5.001, 5.003, 5.002):
        scheduler.call_at(deadline, lambda d=deadline: fired.append(d))
    assert scheduler.fire_due(5.0025) == 2 and fired == [5.001, 5.002]
    assert scheduler.next_deadline() == 5.003
    assert scheduler.fire_due(5.0025) == 0
    assert scheduler.fire_due(5.004) == 2 and fired == [5.001, 5.002, 5.003, 5.004]


def test_ties_fire_in_arming_order_after_their_bucket_fired_in_part() -> None:
    scheduler = Scheduler(lambda: 0.0)
    fired: list[str] = []
    for name, deadline in (("a", 5.003), ("early", 5.001), ("b", 5.003), ("c", 5.003)):
        scheduler.call_at(deadline, lambda name=name: fired.append(name))
    assert scheduler.fire_due(5.002) == 1  # the rest of the bucket stays, rebuilt
    assert scheduler.fire_due(5.004) == 3 and fired == ["early", "a", "b", "c"]


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
