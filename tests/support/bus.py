"""Workers' state buses in one process (kamrouter/modules/bus.py), for unit tests of what
modules put on the bus: each worker's bus is real, and the test delivers the datagrams."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kamrouter.modules.bus import StateBus
from kamrouter.stats import StatsRegistry


class BusWorker:
    """Worker ``index`` of two: its statistics and its bus (channels registered by the
    test or a subclass)."""

    def __init__(self, index: int, run_dir: Path) -> None:
        self.stats = StatsRegistry()
        self.bus = StateBus(index, 2, str(run_dir), self.stats, _no_rpc)

    def deliver_to(self, other: BusWorker) -> None:
        """Hand ``other`` every datagram queued for it, as the bus's sender task would."""
        (peer,) = self.bus.peers
        while peer.queue:
            datagram, count = self.bus._pack(peer)
            for _ in range(count):
                peer.queue.popleft()
            other.bus.receive(datagram)


async def _no_rpc(index: int, method: str, params: list[Any]) -> Any:
    raise AssertionError("a starting worker's dump is loaded by the test, not asked for")
