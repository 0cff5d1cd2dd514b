"""``pike``: per-source request rates and the ban list of the pike module (RPC ``pike.*``).

``list`` (alias ``top``) shows sources, busiest first: HOT (flooding or banned, the
default), WARM (above half the limit) or all of them; ``ban``/``unban`` edit the ban list.
"""
from __future__ import annotations

import click

from kamcli.context import Context, pass_context
from kamcli.loader import AliasGroup

COLUMNS = ["ip_addr", "status", "leaf_hits_prev", "leaf_hits_curr", "expires", "ban_expires",
           "reason"]


@click.group("pike", cls=AliasGroup, aliases={"top": "list"})
def cli() -> None:
    """Request-rate limits per source: list, ban, unban."""


@cli.command("list")
@click.option("-f", "--filter", "status", default="HOT", show_default=True,
              type=click.Choice(["HOT", "WARM", "ALL"], case_sensitive=False),
              help="HOT: flooding or banned; WARM: above half the limit; ALL: every source.")
@click.option("-a", "--all", "all_", is_flag=True, help="Same as --filter ALL.")
@pass_context
def list_sources(ctx: Context, status: str, all_: bool) -> None:
    """Show the sources pike counts, busiest first."""
    result = ctx.rpc("pike.list", "ALL" if all_ else status.upper())
    rows = result.get("list") or []
    limit = result.get("max_hits")
    ctx.output(rows, columns=COLUMNS,
               title=f"pike: {len(rows)} sources (limit {limit} requests per unit)")


@cli.command("ban")
@click.argument("ip")
@click.argument("seconds", type=click.IntRange(min=1), required=False)
@click.option("--reason", default="kamcli", show_default=True)
@pass_context
def ban(ctx: Context, ip: str, seconds: int | None, reason: str) -> None:
    """Ban IP for SECONDS (default: the router's ban_time); its requests are dropped."""
    ctx.info(ctx.rpc("pike.ban", ip, seconds, reason))


@cli.command("unban")
@click.argument("ips", nargs=-1, required=True)
@pass_context
def unban(ctx: Context, ips: tuple[str, ...]) -> None:
    """Lift the ban of each IP (and forget its request counts)."""
    for ip in ips:
        ctx.info(ctx.rpc("pike.unban", ip))
