"""The routing API's circuit breaker shared by the state bus (BreakerBus in
kamrouter/modules/api/breaker.py), in process: two workers' buses whose datagrams this test
delivers."""
from __future__ import annotations

import json
from pathlib import Path

from kamrouter.modules.api.breaker import BreakerBus, CircuitBreaker

from support.bus import BusWorker
from support.doubles import FakeClock


class Worker(BusWorker):
    def __init__(self, index: int, run_dir: Path, clock: FakeClock) -> None:
        super().__init__(index, run_dir)
        self.breaker = CircuitBreaker(3, 5.0, clock)
        BreakerBus(self.bus, "api_breaker", self.breaker)


def test_a_circuit_one_worker_opens_is_open_in_the_other_and_closes_in_both(
        tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    a, b = Worker(0, tmp_path, clock), Worker(1, tmp_path, clock)
    a.breaker.failure(down=True)  # a refused connection: open at once
    a.deliver_to(b)
    assert b.breaker.state == "open" and not b.breaker.allow()
    assert b.breaker.retry_in() == 5.0
    clock.now += 5
    assert b.breaker.allow() and b.breaker.state == "half-open"  # b's own probe
    b.breaker.success()
    b.deliver_to(a)
    assert a.breaker.state == "closed" and a.breaker.allow()
    fresh = Worker(1, tmp_path, clock)
    a.breaker.failure(down=True)
    fresh.bus.load(json.loads(json.dumps(a.bus.dump())))
    assert fresh.breaker.state == "open"
