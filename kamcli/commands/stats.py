"""``stats``: statistics, once or refreshed with per-second rates.

For people (table output) the statistics are listed by group under each group's header and
laid out in as many columns as the terminal width takes, so the ~150 statistics of a router
with modules (or of a Kamailio) fit on about one screen. Zero values are dimmed: what moves
stands out. JSON/YAML/raw output is the flat ``{"group:name": value}`` object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from kamcli.completion_sources import complete_stat
from kamcli.context import Context, pass_context
from kamcli.live import MAX_INTERVAL, number, rate_text, run_watch

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

#: Blank columns between two columns of statistics.
GAP = 3
#: Columns are not made shorter than this: a few statistics read best as one list.
MIN_COLUMN_HEIGHT = 20


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


@dataclass(frozen=True)
class Line:
    """One line of the statistics view: a group's header, a statistic, or a blank."""

    name: str = ""
    key: str | None = None  # "group:name" of a statistic
    value: Any = None
    header: bool = False


def newspaper(groups: dict[str, list[tuple[str, str, Any]]], height: int) -> list[list[Line]]:
    """Lay the groups' ``(name, key, value)`` rows out in columns of ``height`` lines,
    like a newspaper: a group starts with its header, in a new column unless it fits in
    the rest of this one; only a group taller than a column runs on into the next, where
    its header is repeated."""
    columns: list[list[Line]] = [[]]
    for group, rows in groups.items():
        column = columns[-1]
        room = height - len(column) - 2  # rows that fit after a blank and the header
        if column and (room < 1 or room < len(rows) < height):  # split only long groups
            column = []
            columns.append(column)
        if column:
            column.append(Line())
        column.append(Line(group, header=True))
        for name, key, value in rows:
            if len(column) >= height:
                column = [Line(f"{group} (cont.)", header=True)]
                columns.append(column)
            column.append(Line(name, key, value))
    return columns


def stats_view(values: dict[str, Any], console: Console,
               rates: dict[str, float | None] | None = None) -> RenderableType:
    """``values`` by group, in as many columns as ``console``'s width takes, as short as
    that allows (but see MIN_COLUMN_HEIGHT). Zero values are dimmed: what moves stands
    out."""
    from rich.table import Table

    if not values:
        return ""
    groups: dict[str, list[tuple[str, str, Any]]] = {}
    for key, value in values.items():
        group, _, name = key.partition(":")
        groups.setdefault(group, []).append((name, key, value))
    shown_rates = {key: rate_text(rate) for key, rate in (rates or {}).items()}
    widths = [max([len(f"{group} (cont.)") for group in groups]
                  + [len(name) for rows in groups.values() for name, _, _ in rows]),
              max([len("value")] + [len(str(value)) for value in values.values()])]
    if rates is not None:
        widths.append(max([len("/s")] + [len(text) for text in shown_rates.values()]))
    column_width = sum(widths) + len(widths) - 1
    fit = max(1, (console.width + GAP) // (column_width + GAP))
    lines = sum(len(rows) + 2 for rows in groups.values()) - 1
    height = max(-(-lines // fit), min(lines, MIN_COLUMN_HEIGHT))
    while len(columns := newspaper(groups, height)) > fit:
        height += 1
    grid = Table.grid(padding=(0, GAP, 0, 0))
    grid.add_row(*(_column_table(column, widths, shown_rates if rates is not None else None)
                   for column in columns))
    return grid


def _column_table(lines: list[Line], widths: list[int],
                  rates: dict[str, str] | None) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1),
                  collapse_padding=True)
    for index, width in enumerate(widths):
        table.add_column(min_width=width, justify="left" if index == 0 else "right",
                         no_wrap=True)
    for line in lines:
        if line.header:
            titles = [line.name, "value", "/s"][:len(widths)]
            table.add_row(*(Text(title, style="bold cyan underline") for title in titles))
        elif line.key is None:
            table.add_row()
        else:
            cells = [Text(line.name), _dim_zero(str(line.value), line.value == 0)]
            if rates is not None:
                rate = rates.get(line.key, "")
                cells.append(_dim_zero(rate, rate in ("", "0")))
            table.add_row(*cells)
    return table


def _dim_zero(text: str, zero: bool) -> Any:
    from rich.text import Text

    return Text(text, style="dim" if zero else "")


@click.command("stats")
@click.argument("names", nargs=-1, shell_complete=complete_stat)
@click.option("-w", "--watch", type=click.FloatRange(min=0.1, max=MAX_INTERVAL), metavar="SECONDS",
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
        if not values:  # exit 1: the router has none of them
            raise click.ClickException(f"no statistics match {' '.join(names) or 'all'}; "
                                       "'kamcli stats' lists them all")
        if ctx.output_format != "table":
            ctx.output(values)
        else:
            ctx.console.print(stats_view(values, ctx.console))
        return
    title = f"statistics, every {watch:g}s (Ctrl-C to stop)"
    run_watch(ctx, watch, count, sample=lambda: {"stats": fetch_stats(ctx, names)},
              view=lambda data, rates: _titled(title, stats_view(data["stats"], ctx.console,
                                                                   rates)),
              rate_keys=lambda data: data["stats"])


def _titled(title: str, view: RenderableType) -> RenderableType:
    from rich.console import Group

    return Group(f"[bold]{title}[/bold]", view)
