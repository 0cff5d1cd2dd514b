"""Statistics of a router with worker processes, as one router: the supervisor's
``stats.*`` and ``tm.stats`` ask every worker and add up.

Counters (events: requests received, replies sent, transactions created) are summed over
the workers, and so are the gauges that are a worker's own (``per_process``: transactions
in use, open connections, memory used, DNS queries made). The other gauges describe state
every worker holds a copy of (a destination list, a table loaded from a file, a
Redis-backed htable, the machine's memory): a sum would count it once per worker, so they
are worker 0's. ``tm.stats`` is all transactions, and those are per worker: summed. A
worker that is being restarted is left out of the sums; its counters start again at zero.
The supervisor's own counters (the ``rpc:`` refusals and drops of the control socket it
serves) are added to the workers' sums.

Each worker answers ``worker.summed`` with the names of its statistics to add up, and
``worker.counters`` with those that are counters, for ``GET /metrics`` (registered only in
workers, see :func:`register_worker_methods`).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kamrouter.rpc import metrics
from kamrouter.rpc.registry import MethodRegistry, RpcError
from kamrouter.stats import Counter, Gauge, StatsRegistry

#: Calls ``method(params)`` on every ready worker, worker 0 first (RpcError if it is not).
AskWorkers = Callable[[str, list[Any]], Awaitable[list[Any]]]


def register_worker_methods(registry: MethodRegistry, stats: StatsRegistry) -> None:
    """What a worker answers for the supervisor's sums."""

    def summed() -> list[str]:
        """Returns the names ("group.name") of this worker's counters and own gauges (the
        supervisor adds them up over the workers)."""
        return [f"{s.group}.{s.name}" for s in stats
                if isinstance(s, Counter) or isinstance(s, Gauge) and s.per_process]

    def counters() -> list[str]:
        """Returns the names ("group.name") of this worker's counters (the rest are
        gauges), for the supervisor's GET /metrics."""
        return [f"{s.group}.{s.name}" for s in stats if isinstance(s, Counter)]

    registry.register("worker.summed", summed)
    registry.register("worker.counters", counters)


class SummedStats:
    """The supervisor's ``stats.*`` and ``tm.stats`` methods."""

    def __init__(self, ask: AskWorkers, own: StatsRegistry) -> None:
        self._ask = ask
        self._own = own

    def _own_counters(self, selectors: list[str]) -> list[Counter]:
        chosen = {id(stat): stat for selector in selectors or ["all"]
                  for stat in self._own.select(selector) if isinstance(stat, Counter)}
        return list(chosen.values())

    def register(self, registry: MethodRegistry) -> None:
        for name, func in (("stats.fetchn", self.fetchn), ("stats.fetch", self.fetch),
                           ("stats.get_statistics", self.get_statistics),
                           ("stats.reset_statistics", self.reset_statistics),
                           ("stats.clear_statistics", self.clear_statistics),
                           ("tm.stats", self.tm_stats)):
            registry.register(name, func)

    async def _summed(self, method: str, params: list[Any]) -> dict[str, Any]:
        """``method``'s {"group.name": number} of worker 0, what adds up summed over all."""
        first, *others = await self._ask(method, params)
        summed = set((await self._ask("worker.summed", []))[0])
        total = dict(first)
        for values in others:
            for key, value in values.items():
                if key in summed and key in total:
                    total[key] += value
        for counter in self._own_counters(params):
            key = f"{counter.group}.{counter.name}"
            total[key] = total.get(key, 0) + counter.value
        return total

    async def fetchn(self, *selectors: str) -> dict[str, int | float]:
        """Returns statistics as {"group.name": value}: counters and each worker's own
        gauges summed over the workers, gauges of shared state once."""
        return await self._summed("stats.fetchn", list(selectors))

    async def fetch(self, *selectors: str) -> dict[str, str]:
        """Returns statistics as {"group.name": "value"}: counters and each worker's
        own gauges summed over the workers, gauges of shared state once."""
        return {key: str(value) for key, value in (await self.fetchn(*selectors)).items()}

    async def get_statistics(self, *selectors: str) -> list[str]:
        """Returns statistics as "group:name = value" lines: counters and each worker's
        own gauges summed over the workers, gauges of shared state once."""
        return [f"{key.replace('.', ':', 1)} = {value}"
                for key, value in (await self.fetchn(*selectors)).items()]

    async def reset_statistics(self, selector: str, *more: str) -> dict[str, Any]:
        """Resets the selected counters to zero in every worker."""
        await self._ask("stats.reset_statistics", [selector, *more])
        for counter in self._own_counters([selector, *more]):
            counter.reset()
        return {}

    async def clear_statistics(self, selector: str, *more: str) -> dict[str, int | float]:
        """Returns the selected statistics (summed as stats.fetchn does), then resets the
        counters in every worker."""
        values = await self._summed("stats.clear_statistics", [selector, *more])
        for counter in self._own_counters([selector, *more]):
            counter.reset()
        return values

    async def metrics_text(self) -> str:
        """GET /metrics of the whole router: the statistics as stats.fetchn sums them."""
        values = await self.fetchn("all")
        counters = {*(await self._ask("worker.counters", []))[0],
                    *(f"{c.group}.{c.name}" for c in self._own_counters([]))}
        rows = []
        for key, value in values.items():
            group, _, name = key.partition(".")
            rows.append((group, name, key in counters, value))
        return metrics.render_rows(rows)

    async def tm_stats(self) -> dict[str, int]:
        """Returns the transaction statistics of all workers together."""
        total: dict[str, int] = {}
        for values in await self._ask("tm.stats", []):
            if not isinstance(values, dict):
                raise RpcError(500, "a worker answered tm.stats with no object")
            for key, value in values.items():
                total[key] = total.get(key, 0) + int(value)
        return total
