"""``tcp``: the router's TCP connections and settings (RPC ``core.tcp_*``, as Kamailio)."""
from __future__ import annotations

import click

from kamcli.context import Context, pass_context

CONNECTION_COLUMNS = ["id", "type", "state", "src_ip", "src_port", "dst_ip", "dst_port",
                      "timeout", "lifetime"]


@click.group("tcp")
def cli() -> None:
    """TCP connections: summary, list, options."""


@cli.command("info")
@pass_context
def info(ctx: Context) -> None:
    """Summary of TCP use: open connections, limits, bytes queued (core.tcp_info)."""
    ctx.output(ctx.rpc("core.tcp_info"))


@cli.command("list")
@pass_context
def list_connections(ctx: Context) -> None:
    """List the open TCP connections; src is the peer, timeout the seconds left before an
    idle connection is closed (core.tcp_list)."""
    ctx.output(ctx.rpc("core.tcp_list"), columns=CONNECTION_COLUMNS
               if ctx.output_format == "table" else None, title="tcp connections")


@cli.command("options")
@pass_context
def options(ctx: Context) -> None:
    """Show the TCP settings (core.tcp_options)."""
    ctx.output(ctx.rpc("core.tcp_options"))
