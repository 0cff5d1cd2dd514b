"""Prometheus text exposition (format 0.0.4) of a :class:`~kamrouter.stats.StatsRegistry`.

``core:rcv_requests`` (a counter) becomes ``kamrouter_core_rcv_requests_total``;
``shmem:real_used_size`` (a gauge) becomes ``kamrouter_shmem_real_used_size``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from kamrouter.stats import Counter, StatsRegistry

PREFIX = "kamrouter"
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(group: str, name: str, *, counter: bool) -> str:
    base = _NOT_NAME.sub("_", f"{PREFIX}_{group}_{name}")
    return f"{base}_total" if counter else base


#: One statistic to expose: group, name, is it a counter, value.
Row = tuple[str, str, bool, "int | float"]


def render(stats: StatsRegistry) -> str:
    return render_rows((stat.group, stat.name, isinstance(stat, Counter), stat.value)
                       for stat in stats)


def render_rows(rows: Iterable[Row]) -> str:
    lines = []
    for group, stat, counter, value in rows:
        name = metric_name(group, stat, counter=counter)
        lines.append(f"# HELP {name} kamrouter statistic {group}:{stat}")
        lines.append(f"# TYPE {name} {'counter' if counter else 'gauge'}")
        lines.append(f"{name} {value}")
    return "\n".join(lines) + "\n"
