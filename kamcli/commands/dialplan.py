"""``dialplan``: translation rules of a running router or Kamailio (RPC ``dialplan.*``).

``show DPID`` lists a dialplan's rules in the order they are tried (one row per rule, with
Kamailio's field names); without DPID every dialplan the router has (kamrouter's
``dialplan.list``). ``translate DPID INPUT`` shows the output and the matching rule's attrs;
INPUT is always sent as a string, so ``0301234`` keeps its leading zero.
"""
from __future__ import annotations

from typing import Any

import click

from kamcli.context import Context, pass_context
from kamcli.loader import AliasGroup

RULE_COLUMNS = ["DPID", "PRIO", "MATCHOP", "MATCHEXP", "MATCHLEN", "SUBSTEXP", "REPLEXP",
                "ATTRS"]


@click.group("dialplan", cls=AliasGroup, aliases={"list": "show", "dump": "show"})
def cli() -> None:
    """Dialplan rules: show, translate, reload."""


def rule_rows(ctx: Context, dpid: int) -> list[dict[str, Any]]:
    """``dialplan.dump``'s entries as one row per rule."""
    dump = ctx.rpc("dialplan.dump", dpid) or {}
    return [{"DPID": dump.get("DPID", dpid), **(entry.get("ENTRY") or {})}
            for entry in dump.get("ENTRIES") or []]


@cli.command("show")
@click.argument("dpid", type=int, required=False)
@pass_context
def show(ctx: Context, dpid: int | None) -> None:
    """Show the rules of dialplan DPID (all dialplans when none is given), in the order
    they are tried: by match length (0, any length, last), then priority."""
    dpids = [dpid] if dpid is not None else [row["DPID"] for row in ctx.rpc("dialplan.list")]
    rows = [row for one in dpids for row in rule_rows(ctx, one)]
    title = f"dialplan {dpid}" if dpid is not None else "dialplans"
    ctx.output(rows, columns=RULE_COLUMNS, title=f"{title} ({len(rows)} rules)")


@cli.command("translate")
@click.argument("dpid", type=int)
@click.argument("value", metavar="INPUT")
@pass_context
def translate(ctx: Context, dpid: int, value: str) -> None:
    """Translate INPUT with the rules of dialplan DPID: output and attributes."""
    ctx.output(ctx.rpc("dialplan.translate", dpid, value), columns=["name", "value"],
               title=f"dialplan {dpid}: {value}")


@cli.command("reload")
@pass_context
def reload(ctx: Context) -> None:
    """Reload the rules from the rules file (the rules in use stay when it is bad)."""
    ctx.rpc("dialplan.reload")
    ctx.info("Ok. Dialplan reloaded.")
