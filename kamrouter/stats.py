"""Statistics registry: counters and gauges named ``group:name``.

Hot-path code holds a :class:`Counter` and does ``counter.value += 1``; nothing is formatted
until the control plane asks. Gauges are computed on read from a callable.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator


class Counter:
    """A monotonically increasing (resettable) integer."""

    __slots__ = ("group", "name", "value")

    def __init__(self, group: str, name: str) -> None:
        self.group = group
        self.name = name
        self.value = 0

    def inc(self, by: int = 1) -> None:
        self.value += by

    def reset(self) -> None:
        self.value = 0


class Gauge:
    """A value read on demand, e.g. the number of transactions in use."""

    __slots__ = ("group", "name", "read", "per_process")

    def __init__(self, group: str, name: str, read: Callable[[], int | float],
                 per_process: bool = False) -> None:
        self.group = group
        self.name = name
        self.read = read
        #: The value is this process's own (its transactions, connections, memory, work
        #: done): a router of several worker processes adds theirs up. Otherwise it
        #: describes state every worker holds a copy of, and counts once.
        self.per_process = per_process

    @property
    def value(self) -> int | float:
        return self.read()

    def reset(self) -> None:
        """Gauges reflect live state; resetting them is a no-op."""


Stat = Counter | Gauge


class StatsRegistry:
    """All statistics of one router, keyed by ``(group, name)`` in registration order."""

    def __init__(self) -> None:
        self._stats: dict[tuple[str, str], Stat] = {}

    def counter(self, group: str, name: str) -> Counter:
        """Return the counter ``group:name``, creating it on first use."""
        existing = self._stats.get((group, name))
        if existing is not None:
            if not isinstance(existing, Counter):
                raise ValueError(f"statistic {group}:{name} is a gauge, not a counter")
            return existing
        counter = Counter(group, name)
        self._stats[(group, name)] = counter
        return counter

    def gauge(self, group: str, name: str, read: Callable[[], int | float], *,
              per_process: bool = False) -> Gauge:
        """Register (or replace) the gauge ``group:name`` computed by ``read``
        (``per_process``: see :attr:`Gauge.per_process`)."""
        gauge = Gauge(group, name, read, per_process)
        self._stats[(group, name)] = gauge
        return gauge

    def get(self, group: str, name: str) -> Stat | None:
        return self._stats.get((group, name))

    def __iter__(self) -> Iterator[Stat]:
        return iter(list(self._stats.values()))

    def groups(self) -> list[str]:
        return list(dict.fromkeys(group for group, _ in self._stats))

    def select(self, selector: str) -> list[Stat]:
        """Statistics matching a Kamailio selector.

        ``all``; ``group:`` (a whole group); ``group:name`` or ``group.name``; or a bare
        ``name`` matched in every group.
        """
        if selector == "all":
            return list(self)
        if selector.endswith(":"):
            group = selector[:-1]
            return [s for s in self if s.group == group]
        for sep in (":", "."):
            if sep in selector:
                group, _, name = selector.partition(sep)
                stat = self._stats.get((group, name))
                if stat is not None:
                    return [stat]
        return [s for s in self if s.name == selector]
