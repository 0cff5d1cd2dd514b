"""``srv``: server facts and settings (sockets, aliases, modules, info, memory, log level)."""
from __future__ import annotations

import click

from kamcli.commands.core import version
from kamcli.context import Context, pass_context


@click.group("srv")
def cli() -> None:
    """Server information and run-time settings."""


@cli.command("sockets")
@pass_context
def sockets(ctx: Context) -> None:
    """List the listening SIP sockets (corex.list_sockets)."""
    ctx.output(ctx.rpc("corex.list_sockets"), columns=["PROTO", "NAME", "PORT", "ADVERTISE"]
               if ctx.output_format == "table" else None)


@cli.command("aliases")
@pass_context
def aliases(ctx: Context) -> None:
    """List the host aliases that mean this server (corex.list_aliases)."""
    ctx.output(ctx.rpc("corex.list_aliases"), columns=["PROTO", "ADDR", "PORT"]
               if ctx.output_format == "table" else None)


@cli.command("modules")
@pass_context
def modules(ctx: Context) -> None:
    """List the loaded modules (core.modules)."""
    ctx.output(ctx.rpc("core.modules"), columns=["module"])


@cli.command("info")
@pass_context
def info(ctx: Context) -> None:
    """Show version and build details (core.info)."""
    ctx.output(ctx.rpc("core.info"))


@cli.command("shm")
@click.argument("unit", required=False, type=click.Choice(["b", "k", "m", "g"]))
@pass_context
def shm(ctx: Context, unit: str | None) -> None:
    """Show the router's memory use, optionally in k, m or g (core.shmmem)."""
    ctx.output(ctx.rpc("core.shmmem", *([unit] if unit else [])))


@cli.command("debug", context_settings={"ignore_unknown_options": True})
@click.argument("level", required=False)
@pass_context
def debug(ctx: Context, level: str | None) -> None:
    """Show or set the log level (corex.debug).

    LEVEL is Kamailio's number (-5..3: 3 debug, 2 info, 1 notice, 0 warning, -1 error) or,
    for kamrouter, a name: debug, info, notice, warning, error, critical.
    """
    if level is None:
        ctx.output(ctx.rpc("corex.debug"))
        return
    number = level.lstrip("-")
    ctx.output(ctx.rpc("corex.debug", int(level) if number.isdigit() else level))


cli.add_command(version)  # also `kamcli srv version`, as the reference kamcli
