"""``stats``: statistics, once or refreshed with per-second rates."""
from __future__ import annotations

from typing import Any

import click

from kamcli.context import Context, pass_context
from kamcli.live import number, rate_text, run_watch


def fetch_stats(ctx: Context, names: tuple[str, ...]) -> dict[str, Any]:
    """``{"group:name": value}`` for the selectors ``names`` (none: all).

    A bare NAME that matches no statistic of that name is retried as the group ``NAME:``,
    so ``kamcli stats tmx`` shows the tmx group (kamcli's habit).
    """
    values = _to_group_names(ctx.rpc("stats.fetch", *(names or ("all",))))
    bare = [n for n in names if ":" not in n and "." not in n
            and not any(key.split(":", 1)[1] == n for key in values)]
    if bare:
        values.update(_to_group_names(ctx.rpc("stats.fetch", *(f"{n}:" for n in bare))))
    return values


def _to_group_names(fetched: Any) -> dict[str, Any]:
    """``stats.fetch`` keys are ``group.name``; kamcli shows ``group:name`` like selectors."""
    if not isinstance(fetched, dict):
        return {}
    return {key.replace(".", ":", 1): number(value) for key, value in fetched.items()}


def stats_table(values: dict[str, Any], rates: dict[str, float | None] | None = None,
                title: str | None = None) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("group")
    table.add_column("name")
    table.add_column("value", justify="right")
    if rates is not None:
        table.add_column("/s", justify="right")
    for key, value in values.items():
        group, _, name = key.partition(":")
        row = [group, name, str(value)]
        if rates is not None:
            row.append(rate_text(rates.get(key)))
        table.add_row(*row)
    return table


@click.command("stats")
@click.argument("names", nargs=-1)
@click.option("-w", "--watch", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Refresh every SECONDS, with per-second rates (Ctrl-C stops).")
@click.option("-n", "--count", type=click.IntRange(min=1),
              help="With --watch: stop after COUNT refreshes.")
@pass_context
def stats(ctx: Context, names: tuple[str, ...], watch: float | None, count: int | None) -> None:
    """Show statistics: all, or the NAMES given.

    \b
    NAME forms: group: (a whole group, e.g. core:), group:name (core:rcv_requests),
    or a bare name (rcv_requests, or a group name such as tmx).
    """
    if watch is None:
        if count is not None:
            raise click.UsageError("--count goes with --watch")
        values = fetch_stats(ctx, names)
        if not values:
            ctx.warn(f"no statistics match {' '.join(names) or 'all'}")
        if ctx.output_format == "table":
            ctx.console.print(stats_table(values))
        else:
            ctx.output(values)
        return
    run_watch(ctx, watch, count, sample=lambda: {"stats": fetch_stats(ctx, names)},
              view=lambda data, rates: stats_table(
                  data["stats"], rates, title=f"statistics, every {watch:g}s (Ctrl-C to stop)"),
              rate_keys=lambda data: data["stats"])
