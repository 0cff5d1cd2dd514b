"""A circuit breaker in front of the routing API (sans-IO, driven by a clock).

closed    every call asks the API; ``threshold`` consecutive failures (or one failure that
          proves the API is down, e.g. a refused connection) open the circuit.
open      calls fall back at once without asking; after ``retry_after`` seconds the next
          call is let through as a probe (half-open).
half-open one probe in flight, other calls fall back; its success closes the circuit, its
          failure opens it again for another ``retry_after``.

With worker processes, ``on_change`` tells the state bus when the circuit opens or closes
(:class:`BreakerBus`), so one worker finding the API down spares the others their own
failures; the probe of half-open stays each worker's own.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from kamrouter.modules.bus import StateBus

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    def __init__(self, threshold: int, retry_after: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.retry_after = retry_after
        self.clock = clock
        self.state: State = "closed"
        self.failures = 0
        self.opened_at = 0.0
        #: Told of each opening (with its time) and closing decided here.
        self.on_change: Callable[[State, float], None] | None = None

    def allow(self) -> bool:
        """Whether this call may ask the API (making it the probe when the wait is over)."""
        if self.state == "closed":
            return True
        if self.state == "open" and self.clock() >= self.opened_at + self.retry_after:
            self.state = "half-open"
            return True
        return False

    def success(self) -> None:
        was = self.state
        self.state = "closed"
        self.failures = 0
        if was != "closed" and self.on_change is not None:
            self.on_change("closed", 0.0)

    def failure(self, down: bool = False) -> None:
        """Record a failed call; ``down`` means the API is certainly unreachable."""
        self.failures += 1
        if down or self.state == "half-open" or self.failures >= self.threshold:
            was = self.state
            self.state = "open"
            self.opened_at = self.clock()
            if was != "open" and self.on_change is not None:
                self.on_change("open", self.opened_at)

    def apply(self, state: State, opened_at: float) -> None:
        """Take the state another worker decided (its clock is this machine's monotonic
        clock too, as this one's)."""
        self.state, self.failures = state, 0
        if state == "open":
            self.opened_at = opened_at

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.opened_at + self.retry_after - self.clock())


class BreakerBus:
    """A circuit breaker's openings and closings on the state bus, as ``[state, opened_at]``
    on its own channel (one per breaker)."""

    def __init__(self, bus: StateBus, channel: str, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        breaker.on_change = lambda state, opened_at: bus.publish(channel, [state, opened_at])
        bus.register(channel, self)

    def apply(self, payload: Any) -> None:
        state, opened_at = payload
        if state not in ("open", "closed") or type(opened_at) not in (int, float):
            raise ValueError(f"not a breaker state: {payload!r}"[:100])
        self.breaker.apply(state, float(opened_at))

    def dump(self) -> list[Any]:
        state = "open" if self.breaker.state == "open" else "closed"
        return [state, self.breaker.opened_at]

    def load(self, data: Any) -> None:
        self.apply(data)
