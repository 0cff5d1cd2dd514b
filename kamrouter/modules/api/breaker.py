"""A circuit breaker in front of the routing API (sans-IO, driven by a clock).

closed    every call asks the API; ``threshold`` consecutive failures (or one failure that
          proves the API is down, e.g. a refused connection) open the circuit.
open      calls fall back at once without asking; after ``retry_after`` seconds the next
          call is let through as a probe (half-open).
half-open one probe in flight, other calls fall back; its success closes the circuit, its
          failure opens it again for another ``retry_after``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    def __init__(self, threshold: int, retry_after: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.retry_after = retry_after
        self.clock = clock
        self.state: State = "closed"
        self.failures = 0
        self.opened_at = 0.0

    def allow(self) -> bool:
        """Whether this call may ask the API (making it the probe when the wait is over)."""
        if self.state == "closed":
            return True
        if self.state == "open" and self.clock() >= self.opened_at + self.retry_after:
            self.state = "half-open"
            return True
        return False

    def success(self) -> None:
        self.state = "closed"
        self.failures = 0

    def failure(self, down: bool = False) -> None:
        """Record a failed call; ``down`` means the API is certainly unreachable."""
        self.failures += 1
        if down or self.state == "half-open" or self.failures >= self.threshold:
            self.state = "open"
            self.opened_at = self.clock()

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.opened_at + self.retry_after - self.clock())
