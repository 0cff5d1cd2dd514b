"""``tls``: the router's TLS connections (Kamailio kamcli's ``tls`` group)."""
from __future__ import annotations

import click

from kamcli.context import Context, pass_context


@click.group("tls")
def cli() -> None:
    """TLS connections and counts."""


@cli.command("list")
@pass_context
def tls_list(ctx: Context) -> None:
    """List open TLS connections with peer, protocol and cipher (tls.list)."""
    ctx.output(ctx.rpc("tls.list"),
               columns=["id", "peer", "local", "created", "timeout", "version", "cipher",
                        "state"]
               if ctx.output_format == "table" else None)


@cli.command("info")
@pass_context
def tls_info(ctx: Context) -> None:
    """Show TLS connection counts (tls.info)."""
    ctx.output(ctx.rpc("tls.info"))
