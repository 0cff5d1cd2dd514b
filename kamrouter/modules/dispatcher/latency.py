"""Per-target round-trip statistics from probe replies, in milliseconds.

AVG and STD are long-term (Welford's running mean and deviation), EST an exponentially
weighted estimate reacting to recent probes (weight ``alpha`` for the newest sample), MAX
the worst seen, TIMEOUT the probes that got no reply at all.
"""
from __future__ import annotations

import math


class LatencyStats:
    __slots__ = ("count", "avg", "_m2", "estimate", "max", "timeouts")

    def __init__(self, initial_estimate: float = 0.0) -> None:
        self.count = 0
        self.avg = 0.0
        self._m2 = 0.0
        self.estimate = initial_estimate
        self.max = 0.0
        self.timeouts = 0

    @property
    def std(self) -> float:
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0

    def add(self, rtt_ms: float, alpha: float) -> None:
        """Account one answered probe."""
        self.count += 1
        delta = rtt_ms - self.avg
        self.avg += delta / self.count
        self._m2 += delta * (rtt_ms - self.avg)
        if self.count == 1 and not self.estimate:
            self.estimate = rtt_ms
        else:
            self.estimate += alpha * (rtt_ms - self.estimate)
        self.max = max(self.max, rtt_ms)

    def add_timeout(self) -> None:
        self.timeouts += 1

    def snapshot(self) -> list[float]:
        """Everything, for another worker process (:meth:`restore`)."""
        return [self.count, self.avg, self._m2, self.estimate, self.max, self.timeouts]

    def restore(self, values: list[float]) -> None:
        """Take over another worker's :meth:`snapshot` (ValueError/TypeError if malformed)."""
        count, avg, m2, estimate, worst, timeouts = (float(v) for v in values)
        self.count, self.timeouts = int(count), int(timeouts)
        self.avg, self._m2, self.estimate, self.max = avg, m2, estimate, worst

    def as_rpc(self) -> dict[str, float | int]:
        """Kamailio's ``LATENCY`` object."""
        return {"AVG": round(self.avg, 3), "STD": round(self.std, 3),
                "EST": round(self.estimate, 3), "MAX": round(self.max, 3),
                "TIMEOUT": self.timeouts}
