"""Prometheus text exposition (format 0.0.4) of a :class:`~kamrouter.stats.StatsRegistry`.

``core:rcv_requests`` (a counter) becomes ``kamrouter_core_rcv_requests_total``;
``shmem:real_used_size`` (a gauge) becomes ``kamrouter_shmem_real_used_size``.
"""
from __future__ import annotations

import re

from kamrouter.stats import Counter, StatsRegistry

PREFIX = "kamrouter"
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(group: str, name: str, *, counter: bool) -> str:
    base = _NOT_NAME.sub("_", f"{PREFIX}_{group}_{name}")
    return f"{base}_total" if counter else base


def render(stats: StatsRegistry) -> str:
    lines = []
    for stat in stats:
        counter = isinstance(stat, Counter)
        name = metric_name(stat.group, stat.name, counter=counter)
        lines.append(f"# HELP {name} kamrouter statistic {stat.group}:{stat.name}")
        lines.append(f"# TYPE {name} {'counter' if counter else 'gauge'}")
        lines.append(f"{name} {stat.value}")
    return "\n".join(lines) + "\n"
