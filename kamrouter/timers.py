"""One timer scheduler for the whole router (sans-IO).

Transactions, dispatcher probes and expiries all arm timers here instead of sleeping in a task
each. The I/O layer asks :meth:`Scheduler.next_deadline`, sleeps until then (or until a packet
arrives) and calls :meth:`Scheduler.fire_due` with the current time. Tests drive it with a fake
clock and call ``fire_due`` by hand.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

#: Rebuild the heap without cancelled timers once they are this many and the majority:
#: most transaction timers are cancelled long before their deadline (fr_inv_timer, 120 s),
#: and would otherwise fill the heap and memory in proportion to the call rate.
COMPACT_AFTER = 4096


class Timer:
    """Handle of an armed timer; :meth:`cancel` is O(1) (the heap entry is skipped later)."""

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
        # Until the heap entry goes it must not keep what the callback refers to (a whole
        # transaction) alive.
        self.callback = _nothing
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.timer_cancelled()


def _nothing() -> None:
    pass


class Scheduler:
    """A binary heap of timers ordered by deadline (ties fire in arming order)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled = 0  # cancelled timers still in the heap
        #: Set by the I/O layer to wake its sleeper when an earlier deadline appears.
        self.on_earlier_deadline: Callable[[], None] | None = None
        #: Set by the I/O layer to take what a timer callback raised (counted and logged, the
        #: other timers still fire); unset, the error propagates (tests see it).
        self.on_error: Callable[[Timer, Exception], None] | None = None

    def call_at(self, deadline: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(deadline, callback, self)
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        if self.on_earlier_deadline is not None and (earliest is None or deadline < earliest):
            self.on_earlier_deadline()
        return timer

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return self.call_at(self.clock() + delay, callback)

    def timer_cancelled(self) -> None:
        self._cancelled += 1
        if self._cancelled >= COMPACT_AFTER and self._cancelled * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def fire_due(self, now: float | None = None) -> int:
        """Run every timer whose deadline is at or before ``now``; return how many fired."""
        if now is None:
            now = self.clock()
        fired = 0
        # self._heap each time: a callback's cancel() may compact it into a new list.
        while self._heap and self._heap[0][0] <= now:
            _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                self._cancelled -= 1
                continue
            timer.cancelled = True  # a fired timer cannot be cancelled again
            timer._scheduler = None
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
        return len(self._heap) - self._cancelled
