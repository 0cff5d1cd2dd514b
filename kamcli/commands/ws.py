"""``ws``: the router's WebSocket connections (Kamailio's websocket module RPC)."""
from __future__ import annotations

import click

from kamcli.context import Context, pass_context


@click.group("ws")
def cli() -> None:
    """WebSocket connections (browsers, RFC 7118)."""


@cli.command("dump")
@pass_context
def ws_dump(ctx: Context) -> None:
    """List open WebSocket connections with peer, state, idle time and Origin (ws.dump)."""
    ctx.output(ctx.rpc("ws.dump"),
               columns=["id", "peer", "local", "state", "idle", "origin", "sub_protocol"]
               if ctx.output_format == "table" else None)


@cli.command("close")
@click.argument("conn_id", metavar="ID", type=int)
@pass_context
def ws_close(ctx: Context, conn_id: int) -> None:
    """Close WebSocket connection ID with code 1000 (ws.close)."""
    ctx.output(ctx.rpc("ws.close", conn_id))
