"""Refreshing views (``stats --watch``, ``moni``): sample, compute per-second rates, redraw.

On a terminal with table output the view is a Rich Live display redrawn in place; otherwise
each sample is one JSON line on stdout (``kamcli -o json stats --watch 5 | jq``). Ctrl-C ends
the loop normally (exit 0). One connection serves every sample. When the router goes away
(a restart), the view says "reconnecting…" (on stderr without a terminal) and tries again
every interval; rates start afresh once it is back, since its counters did too.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from kamcli.context import Context
from kamcli.errors import Unreachable

Sample = dict[str, Any]
#: Longest refresh period accepted (a day): longer ones overflow the sleep.
MAX_INTERVAL = 86400.0


def number(value: Any) -> Any:
    """Statistic values arrive as strings from ``stats.fetch``: make numbers of them."""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
    return value


class Rates:
    """Per-second change of each numeric value between consecutive samples."""

    def __init__(self) -> None:
        self._previous: dict[str, float] = {}
        self._when: float | None = None

    def update(self, values: dict[str, Any], now: float) -> dict[str, float | None]:
        elapsed = None if self._when is None else now - self._when
        rates: dict[str, float | None] = {}
        for key, value in values.items():
            before = self._previous.get(key)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            rates[key] = ((value - before) / elapsed
                          if numeric and before is not None and elapsed else None)
        self._previous = {k: v for k, v in values.items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._when = now
        return rates


def rate_text(rate: float | None) -> str:
    if rate is None:
        return ""
    return f"{rate:.1f}" if rate % 1 else f"{rate:.0f}"


#: Shortest wait between two attempts to reach a router that went away (seconds).
MIN_RETRY = 0.5


class Outage:
    """A sample that could not be taken: the router went away (``message`` says how)."""

    def __init__(self, error: Unreachable) -> None:
        self.message = error.format_message()


def run_watch(ctx: Context, interval: float, count: int | None,
              sample: Callable[[], Sample], view: Callable[[Sample, dict[str, float | None]], Any],
              rate_keys: Callable[[Sample], dict[str, Any]]) -> None:
    """Sample every ``interval`` seconds, ``count`` times (None: until Ctrl-C)."""
    live_view = ctx.output_format == "table" and ctx.console.is_terminal
    try:
        if live_view:
            from rich.console import Group
            from rich.live import Live
            from rich.markup import escape

            shown: Any = ""
            with Live(console=ctx.console, auto_refresh=False, transient=False) as live:
                for event in _samples(sample, rate_keys, interval, count):
                    if isinstance(event, Outage):
                        live.update(Group(shown, f"[bold yellow]reconnecting… "
                                                 f"{escape(event.message)}[/]"), refresh=True)
                    else:
                        shown = view(*event)
                        live.update(shown, refresh=True)
        else:
            away = False
            for event in _samples(sample, rate_keys, interval, count):
                if isinstance(event, Outage):
                    if not away:
                        ctx.info(f"reconnecting… {event.message}")
                    away = True
                    continue
                if away:
                    ctx.info("reconnected")
                    away = False
                data, current = event
                if ctx.output_format == "table":
                    ctx.console.print(view(data, current))
                else:
                    line = {"time": time.time(), **data,
                            "rates": {k: round(v, 3) for k, v in current.items()
                                      if v is not None}}
                    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                    sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def _samples(sample: Callable[[], Sample], rate_keys: Callable[[Sample], dict[str, Any]],
             interval: float, count: int | None) -> Iterator[tuple[Sample, Any] | Outage]:
    """``(sample, rates)`` every ``interval``, ``count`` of them; an :class:`Outage` for each
    attempt that found the router unreachable after a first sample (those do not count);
    unreachable from the start is an error (exit 3), as for any command."""
    rates = Rates()
    taken = 0
    while count is None or taken < count:
        started = time.monotonic()
        try:
            data = sample()
        except Unreachable as exc:
            if taken == 0:
                raise
            yield Outage(exc)
            rates = Rates()  # a restarted router counts from zero again
            time.sleep(max(MIN_RETRY, interval - (time.monotonic() - started)))
            continue
        yield data, rates.update(rate_keys(data), started)
        taken += 1
        if count is None or taken < count:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
