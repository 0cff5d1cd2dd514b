"""One timer scheduler for the whole router (sans-IO).

Transactions, dispatcher probes and expiries all arm timers here instead of sleeping in a task
each. The I/O layer asks :meth:`Scheduler.next_deadline`, sleeps until then (or until a packet
arrives) and calls :meth:`Scheduler.fire_due` with the current time. Tests drive it with a fake
clock and call ``fire_due`` by hand.

Timers live in buckets of :data:`SLOT` seconds of deadline, and a heap orders the buckets,
not the timers: arming and cancelling are a dict insert and delete, so a cancelled timer
leaves nothing behind. (A heap of timers had to be rebuilt once cancelled entries, mostly
``fr_inv_timer``'s 120 s, were the majority: 20–35 ms for 50,000 entries at 1,250 calls/s,
which every call arriving meanwhile waited for; ``benchmarks/stalls.py`` shows it.) A
bucket keeps its timers in arming order and the sort of a due bucket is stable, so timers
with one deadline fire in arming order without a sequence number (an int of 32 bytes per
timer).
"""
from __future__ import annotations

import heapq
from collections.abc import Callable

#: Width of a bucket of deadlines, in seconds: deadlines within one fire in order, as all do.
SLOT = 0.01


def _slot(deadline: float) -> int:
    return int(deadline // SLOT)


class Timer:
    """Handle of an armed timer; :meth:`cancel` takes it out of its bucket."""

    __slots__ = ("deadline", "callback", "cancelled", "_scheduler")

    def __init__(self, deadline: float, callback: Callable[[], object],
                 scheduler: Scheduler) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False
        self._scheduler: Scheduler | None = scheduler

    def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        self.callback = _nothing  # a caller may keep the handle: not the transaction behind it
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.timer_cancelled(self)


def _nothing() -> None:
    pass


def _deadline(timer: Timer) -> float:
    return timer.deadline


class Scheduler:
    """Timers by deadline (ties fire in arming order), in buckets of :data:`SLOT` seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        #: slot → its armed timers (a dict as an ordered set).
        self._buckets: dict[int, dict[Timer, None]] = {}
        #: Heap of the slots that have a bucket, plus slots whose bucket emptied (skipped).
        self._slots: list[int] = []
        self._armed = 0
        #: The earliest deadline the sleeper knows of (what it sleeps until).
        self._known_next: float | None = None
        #: Set by the I/O layer to wake its sleeper when an earlier deadline appears.
        self.on_earlier_deadline: Callable[[], None] | None = None
        #: Set by the I/O layer to take what a timer callback raised (counted and logged, the
        #: other timers still fire); unset, the error propagates (tests see it).
        self.on_error: Callable[[Timer, Exception], None] | None = None

    def call_at(self, deadline: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(deadline, callback, self)
        slot = _slot(deadline)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = {}
            heapq.heappush(self._slots, slot)
        bucket[timer] = None
        self._armed += 1
        if self._known_next is None or deadline < self._known_next:
            self._known_next = deadline
            if self.on_earlier_deadline is not None:
                self.on_earlier_deadline()
        return timer

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return self.call_at(self.clock() + delay, callback)

    def timer_cancelled(self, timer: Timer) -> None:
        self._armed -= 1
        slot = _slot(timer.deadline)
        bucket = self._buckets.get(slot)
        if bucket is not None and bucket.pop(timer, 0) is None and not bucket:
            del self._buckets[slot]  # its slot stays in the heap until it comes due

    def next_deadline(self) -> float | None:
        slots, buckets = self._slots, self._buckets
        while slots and slots[0] not in buckets:
            heapq.heappop(slots)
        self._known_next = (min(timer.deadline for timer in buckets[slots[0]])
                            if slots else None)
        return self._known_next

    def fire_due(self, now: float | None = None) -> int:
        """Run every timer whose deadline is at or before ``now``; return how many fired."""
        if now is None:
            now = self.clock()
        last = _slot(now)
        slots, buckets = self._slots, self._buckets
        fired = 0
        while slots and slots[0] <= last:
            slot = slots[0]
            bucket = buckets.pop(slot, None)
            if bucket is None:
                heapq.heappop(slots)
                continue
            if slot < last:
                heapq.heappop(slots)
                due = sorted(bucket, key=_deadline)
            else:  # the bucket of ``now``: only what is due, the rest stays in its slot
                due = sorted((timer for timer in bucket if timer.deadline <= now),
                             key=_deadline)
                if len(due) < len(bucket):
                    buckets[slot] = {timer: None for timer in bucket if timer.deadline > now}
                else:
                    heapq.heappop(slots)
                if not due:
                    break
            for timer in due:
                if timer.cancelled:  # by a callback that fired before it
                    continue
                timer.cancelled = True  # a fired timer cannot be cancelled again
                timer._scheduler = None
                self._armed -= 1
                fired += 1
                try:
                    timer.callback()
                except Exception as exc:
                    if self.on_error is None:
                        raise
                    self.on_error(timer, exc)
        return fired

    def __len__(self) -> int:
        """Timers armed and neither fired nor cancelled."""
        return self._armed
