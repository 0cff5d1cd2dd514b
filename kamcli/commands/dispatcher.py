"""``dispatcher``: destination sets of the load balancer (RPC ``dispatcher.*``).

``list`` and ``watch`` turn ``dispatcher.list`` into one row per destination (set, uri, state,
priority, weight, latency, active calls, last probe): a coloured table on a terminal, the rows
as JSON with ``-o json``. ``watch`` redraws every second with each destination's calls per
second (so traffic is seen leaving a dead destination and coming back) and highlights
destinations whose state just changed, with a log of the transitions: the view to keep open
during an incident.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import click

from kamcli.completion_sources import complete_dispatcher_set
from kamcli.context import Context, pass_context
from kamcli.loader import AliasGroup
from kamcli.live import MAX_INTERVAL, rate_text, run_watch
from kamcli.commands.stats import fetch_stats

STATES = ("active", "trying", "inactive", "disabled")
_STATE_OF_LETTER = {"A": "active", "T": "trying", "I": "inactive", "D": "disabled"}
_STATE_STYLE = {"active": "green", "trying": "yellow", "inactive": "bold red",
                "disabled": "dim"}
#: How long (s) ``watch`` keeps a destination highlighted after its state changed.
HIGHLIGHT_SECONDS = 10.0
#: Transitions ``watch`` keeps in its log.
TRANSITION_LOG = 12



@click.group("dispatcher", cls=AliasGroup,
             aliases={"memadd": "add", "memrm": "rm", "remove": "rm", "setstate": "set-state"})
def cli() -> None:
    """Load-balancer destination sets: list, watch, reload, add/rm, set-state, ping, hash."""


# -- rows ---------------------------------------------------------------------------------

def destination_rows(listing: Any) -> list[dict[str, Any]]:
    """``dispatcher.list``'s nested result as one flat row per destination."""
    rows: list[dict[str, Any]] = []
    if not isinstance(listing, dict):
        return rows
    for record in listing.get("RECORDS") or []:
        group = record.get("SET", {})
        for target in group.get("TARGETS") or []:
            dest = target.get("DEST", {})
            flags = str(dest.get("FLAGS", "AX"))
            attrs = dest.get("ATTRS") or {}
            latency = dest.get("LATENCY") or {}
            probe = dest.get("PROBE") or {}
            runtime = dest.get("RUNTIME") or {}
            rows.append({
                "set": group.get("ID"),
                "uri": dest.get("URI"),
                "state": _STATE_OF_LETTER.get(flags[:1], flags),
                "probing": flags[1:2] == "P",
                "flags": flags,
                "priority": dest.get("PRIORITY"),
                "weight": attrs.get("WEIGHT"),
                "rweight": attrs.get("RWEIGHT"),
                "duid": attrs.get("DUID"),
                "latency_ms": {key.lower(): value for key, value in latency.items()},
                "active_calls": runtime.get("DLGLOAD"),
                "selected": runtime.get("SELECTED"),
                "last_probe": probe.get("LAST"),
                "last_probe_code": probe.get("CODE"),
                "last_probe_reason": probe.get("REASON"),
            })
    return rows


def select_rows(rows: Iterable[dict[str, Any]], setid: int | None,
                state: str | None) -> list[dict[str, Any]]:
    return [row for row in rows if (setid is None or row["set"] == setid)
            and (state is None or row["state"] == state)]


def _age(timestamp: Any, now: float) -> str:
    if not isinstance(timestamp, (int, float)):
        return "-"
    seconds = max(0.0, now - timestamp)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _latency_text(latency: dict[str, Any]) -> str:
    estimate = latency.get("est")
    if not isinstance(estimate, (int, float)) or not (estimate or latency.get("avg")):
        return "-"
    return f"{estimate:.1f} ms"


def _probe_text(row: dict[str, Any], now: float) -> str:
    code = row["last_probe_code"]
    text = f"{code} {_age(row['last_probe'], now)}" if code else "-"
    lost = row["latency_ms"].get("timeout")
    return f"{text} ({lost} lost)" if lost else text


def destinations_table(rows: list[dict[str, Any]], now: float, title: str | None = None,
                       highlight: set[tuple[Any, Any]] | None = None,
                       rates: dict[str, float | None] | None = None) -> Any:
    """The destinations as a table; with ``rates`` (watch) a calls/s column too."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    table.add_column("set", justify="right", min_width=3)
    table.add_column("uri", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("prio", justify="right", min_width=4)
    table.add_column("weight", justify="right", min_width=6)
    table.add_column("latency", justify="right", no_wrap=True)
    table.add_column("calls", justify="right", min_width=5)
    if rates is not None:
        table.add_column("calls/s", justify="right", min_width=7)
    table.add_column("last probe")
    for row in rows:
        state = row["state"]
        marker = " ⟳" if row["probing"] else ""
        weight = row["weight"] or row["rweight"] or ""
        changed = highlight is not None and (row["set"], row["uri"]) in highlight
        cells = [
            str(row["set"]), escape(str(row["uri"])),
            f"[{_STATE_STYLE.get(state, 'white')}]{escape(state)}[/]{marker}",
            str(row["priority"]), str(weight), _latency_text(row["latency_ms"]),
            "" if row["active_calls"] is None else str(row["active_calls"])]
        if rates is not None:
            cells.append(rate_text(rates.get(selected_key(row))))
        cells.append(escape(_probe_text(row, now)))
        table.add_row(*cells, style="reverse" if changed else None)
    return table


def selected_key(row: dict[str, Any]) -> str:
    """The name under which ``watch`` tracks a destination's selections for its rate."""
    return f"selected:{row['set']}:{row['uri']}"


def _fetch_rows(ctx: Context, setid: int | None, state: str | None) -> list[dict[str, Any]]:
    return select_rows(destination_rows(ctx.rpc("dispatcher.list")), setid, state)


_set_option = click.option("-s", "--set", "setid", type=int, metavar="N",
                           shell_complete=complete_dispatcher_set,
                           help="Only destinations of set N.")
_state_option = click.option("--state", type=click.Choice(STATES),
                             help="Only destinations in this state.")


@cli.command("list")
@_set_option
@_state_option
@pass_context
def list_destinations(ctx: Context, setid: int | None, state: str | None) -> None:
    """Show the destinations: state (⟳ = probed), priority, weight, latency estimate,
    active calls, last probe (status, how long ago, probes lost)."""
    rows = _fetch_rows(ctx, setid, state)
    if ctx.output_format == "table":
        ctx.console.print(destinations_table(rows, time.time()))
    else:
        ctx.output(rows)


# -- watch --------------------------------------------------------------------------------

class TransitionTracker:
    """Remembers each destination's state between samples and logs the changes."""

    def __init__(self) -> None:
        self._states: dict[tuple[Any, Any], str] = {}
        self._changed_at: dict[tuple[Any, Any], float] = {}
        self.log: list[dict[str, Any]] = []

    def update(self, rows: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """The transitions since the previous sample (none on the first one)."""
        new: list[dict[str, Any]] = []
        first = not self._states
        seen = {}
        for row in rows:
            key = (row["set"], row["uri"])
            seen[key] = row["flags"]
            before = self._states.get(key)
            if first or before == row["flags"]:
                continue
            change = {"time": now, "set": row["set"], "uri": row["uri"],
                      "from": before, "to": row["flags"]}
            new.append(change)
            self._changed_at[key] = now
        for key in set(self._states) - set(seen):
            if not first:
                new.append({"time": now, "set": key[0], "uri": key[1],
                            "from": self._states[key], "to": None})
        self._states = seen
        self.log = (self.log + new)[-TRANSITION_LOG:]
        return new

    def recent(self, now: float) -> set[tuple[Any, Any]]:
        return {key for key, when in self._changed_at.items() if now - when < HIGHLIGHT_SECONDS}


def _transition_text(change: dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(change["time"]))
    before = change["from"] or "new"
    after = change["to"] or "removed"
    return f"{when}  set {change['set']}  {change['uri']}  {before} → {after}"


def watch_view(data: dict[str, Any], rates: dict[str, float | None],
               tracker: TransitionTracker, interval: float) -> Any:
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel

    now = data["time"]
    rows = data["targets"]
    per_set = []
    for setid in dict.fromkeys(row["set"] for row in rows):
        parts = [f"{rate_text(rates.get(f'dispatcher:set{setid}_{name}')) or '0'} {label}/s"
                 for name, label in (("selections", "calls"), ("failovers", "failovers"),
                                     ("probes_failed", "failed probes"))]
        per_set.append(f"set {setid}: " + ", ".join(parts))
    header = (f"[bold]dispatcher[/bold]  ·  refresh {interval:g}s  ·  Ctrl-C to quit\n"
              + escape("   ".join(per_set)))
    log = "\n".join(escape(_transition_text(c)) for c in reversed(tracker.log)) or \
        "no state change seen yet"
    return Group(header, destinations_table(rows, now, highlight=tracker.recent(now),
                                            rates=rates),
                 Panel(log, title="transitions", expand=False))


@cli.command("watch")
@_set_option
@_state_option
@click.option("-i", "--interval", type=click.FloatRange(min=0.1, max=MAX_INTERVAL), default=1.0,
              show_default=True, metavar="SECONDS", help="Refresh period.")
@click.option("-n", "--count", type=click.IntRange(min=1), help="Stop after COUNT refreshes.")
@pass_context
def watch(ctx: Context, setid: int | None, state: str | None, interval: float,
          count: int | None) -> None:
    """Live view of the destinations: state, latency, active calls and calls/s refreshed
    every second, state changes highlighted and logged (-o json: one line per refresh)."""
    tracker = TransitionTracker()

    def sample() -> dict[str, Any]:
        now = time.time()
        rows = _fetch_rows(ctx, setid, state)
        return {"time": now, "targets": rows, "transitions": tracker.update(rows, now),
                "stats": fetch_stats(ctx, ("dispatcher:",))}

    def rate_keys(data: dict[str, Any]) -> dict[str, Any]:
        selected = {selected_key(row): row["selected"] for row in data["targets"]}
        return {**data["stats"], **selected}

    run_watch(ctx, interval, count, sample=sample,
              view=lambda data, rates: watch_view(data, rates, tracker, interval),
              rate_keys=rate_keys)


# -- changes ------------------------------------------------------------------------------

@cli.command("reload")
@pass_context
def reload(ctx: Context) -> None:
    """Re-read the destination list; a bad list is rejected whole and the old one stays."""
    ctx.output(ctx.rpc("dispatcher.reload"))


@cli.command("add")
@click.argument("setid", type=int, shell_complete=complete_dispatcher_set)
@click.argument("uri")
@click.option("--flags", type=int, default=0, show_default=True,
              help="State and option bits (8 = probe it).")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--attrs", default="", help='Attributes, e.g. "duid=gw3;weight=20".')
@pass_context
def add(ctx: Context, setid: int, uri: str, flags: int, priority: int, attrs: str) -> None:
    """Add a destination to the running list (until the next reload). Alias: memadd."""
    ctx.output(ctx.rpc("dispatcher.add", setid, uri, flags, priority, attrs))


@cli.command("rm")
@click.argument("setid", type=int, shell_complete=complete_dispatcher_set)
@click.argument("uri")
@click.option("-y", "--yes", is_flag=True, hidden=True)  # accepted: rm never asks
@pass_context
def rm(ctx: Context, setid: int, uri: str, yes: bool) -> None:
    """Remove a destination from the running list (until the next reload), without asking
    (as the reference kamcli). Alias: memrm."""
    ctx.output(ctx.rpc("dispatcher.remove", setid, uri))


@cli.command("set-state")
@click.argument("state")
@click.argument("setid", type=int, shell_complete=complete_dispatcher_set)
@click.argument("uri")
@pass_context
def set_state(ctx: Context, state: str, setid: int, uri: str) -> None:
    """Set STATE (a|i|t|d, optionally followed by p for probing) of URI in set SETID, or of
    every destination of the set with URI "all"."""
    ctx.output(ctx.rpc("dispatcher.set_state", state, setid, uri))


@cli.command("ping")
@click.argument("switch", required=False, type=click.Choice(["on", "off"]))
@pass_context
def ping(ctx: Context, switch: str | None) -> None:
    """Show, or turn on/off, the sending of OPTIONS probes."""
    params = [] if switch is None else [1 if switch == "on" else 0]
    ctx.output(ctx.rpc("dispatcher.ping_active", *params))


@cli.command("hash")
@click.argument("nslots", type=int)
@click.argument("values", nargs=-1, required=True)
@pass_context
def hash_values(ctx: Context, nslots: int, values: tuple[str, ...]) -> None:
    """Kamailio's dispatcher hash of one or two VALUES and its slot among NSLOTS."""
    if len(values) > 2:
        raise click.UsageError("hash takes one or two values")
    ctx.output(ctx.rpc("dispatcher.hash", nslots, *values))
