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


class Timer:
    """Handle of an armed timer; :meth:`cancel` is O(1) (the heap entry is skipped later)."""

    __slots__ = ("deadline", "callback", "cancelled")

    def __init__(self, deadline: float, callback: Callable[[], object]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        # The heap entry stays until its deadline (up to fr_timer, 30 s): it must not keep
        # what the callback refers to (a whole transaction) alive that long.
        self.callback = _nothing


def _nothing() -> None:
    pass


class Scheduler:
    """A binary heap of timers ordered by deadline (ties fire in arming order)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self.armed = 0
        #: Set by the I/O layer to wake its sleeper when an earlier deadline appears.
        self.on_earlier_deadline: Callable[[], None] | None = None

    def call_at(self, deadline: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(deadline, callback)
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        self.armed += 1
        if self.on_earlier_deadline is not None and (earliest is None or deadline < earliest):
            self.on_earlier_deadline()
        return timer

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return self.call_at(self.clock() + delay, callback)

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self.armed -= 1
        return heap[0][0] if heap else None

    def fire_due(self, now: float | None = None) -> int:
        """Run every timer whose deadline is at or before ``now``; return how many fired."""
        if now is None:
            now = self.clock()
        heap = self._heap
        fired = 0
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            self.armed -= 1
            if timer.cancelled:
                continue
            timer.cancelled = True  # a fired timer cannot be cancelled again
            fired += 1
            timer.callback()
        return fired

    def __len__(self) -> int:
        return self.armed
