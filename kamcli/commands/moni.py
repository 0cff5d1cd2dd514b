"""``moni``: a live dashboard of the key counters (requests, replies, transactions, memory)."""
from __future__ import annotations

from typing import Any

import click

from kamcli.commands.core import duration
from kamcli.commands.stats import fetch_stats
from kamcli.context import Context, pass_context
from kamcli.live import MAX_INTERVAL, rate_text, run_watch

#: Dashboard panels: title -> statistics (group:name) shown in it.
PANELS: dict[str, list[str]] = {
    "Requests": ["core:rcv_requests", "core:fwd_requests", "core:drop_requests",
                 "core:err_requests", "core:rcv_requests_invite", "core:rcv_requests_register"],
    "Replies": ["core:rcv_replies", "core:fwd_replies", "sl:sent_replies",
                "sl:sent_err_replies", "sl:2xx_replies", "sl:4xx_replies", "sl:5xx_replies"],
    "Transactions": ["tmx:UAS_transactions", "tmx:UAC_transactions", "tmx:inuse_transactions",
                     "tmx:active_transactions", "tmx:2xx_transactions", "tmx:4xx_transactions",
                     "tmx:5xx_transactions", "tmx:6xx_transactions"],
    "Memory": ["shmem:real_used_size", "shmem:max_used_size", "shmem:free_size"],
}
GROUPS = sorted({name.split(":")[0] + ":" for names in PANELS.values() for name in names})


def sample(ctx: Context) -> dict[str, Any]:
    uptime = ctx.rpc("core.uptime")
    values = fetch_stats(ctx, tuple(GROUPS))
    wanted = {name for names in PANELS.values() for name in names}
    return {"uptime": uptime.get("uptime") if isinstance(uptime, dict) else None,
            "stats": {k: v for k, v in values.items() if k in wanted}}


def human_bytes(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def dashboard(data: dict[str, Any], rates: dict[str, float | None], interval: float,
              target: str) -> Any:
    from rich import box
    from rich.columns import Columns
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    values = data["stats"]
    panels = []
    for title, names in PANELS.items():
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("statistic")
        table.add_column("value", justify="right")
        table.add_column("/s", justify="right")
        for name in names:
            value = values.get(name)
            shown = "-" if value is None else (
                human_bytes(value) if name.startswith("shmem:") else str(value))
            table.add_row(name.split(":", 1)[1], shown,
                          "" if name.startswith("shmem:") else rate_text(rates.get(name)))
        panels.append(Panel(table, title=title, expand=False))
    uptime = data.get("uptime")
    up = duration(uptime) if uptime is not None else "?"
    header = f"[bold]{escape(target)}[/bold]  up {up}  ·  refresh {interval:g}s  ·  Ctrl-C to quit"
    return Group(header, Columns(panels))


@click.command("moni")
@click.option("-i", "--interval", type=click.FloatRange(min=0.1, max=MAX_INTERVAL), default=1.0,
              show_default=True, metavar="SECONDS", help="Refresh period.")
@click.option("-n", "--count", type=click.IntRange(min=1), help="Stop after COUNT refreshes.")
@click.option("--once", is_flag=True, help="Show one sample and exit (same as -n 1).")
@pass_context
def moni(ctx: Context, interval: float, count: int | None, once: bool) -> None:
    """Live dashboard of the key counters, with per-second rates."""
    run_watch(ctx, interval, 1 if once else count, sample=lambda: sample(ctx),
              view=lambda data, rates: dashboard(data, rates, interval,
                                                 str(ctx.options.target)),
              rate_keys=lambda data: data["stats"])
