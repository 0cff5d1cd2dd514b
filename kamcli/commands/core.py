"""``uptime``, ``version`` and ``ps``: the router's basic facts."""
from __future__ import annotations

import click

from kamcli.context import Context, pass_context


def duration(seconds: int) -> str:
    """``93784`` → ``1d 2h 3m 4s``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m"))
             if value]
    return " ".join([*parts, f"{secs}s"])


@click.command("uptime")
@pass_context
def uptime(ctx: Context) -> None:
    """Show how long the router has been running (core.uptime)."""
    result = ctx.rpc("core.uptime")
    if ctx.output_format == "table" and isinstance(result, dict) and "uptime" in result:
        result = {"up since": result.get("up_since"), "now": result.get("now"),
                  "uptime": duration(result["uptime"])}
    ctx.output(result)


@click.command("version")
@pass_context
def version(ctx: Context) -> None:
    """Show the router's version (core.version)."""
    ctx.output(ctx.rpc("core.version"))


@click.command("ps")
@pass_context
def ps(ctx: Context) -> None:
    """List the router's processes and tasks (core.psx)."""
    ctx.output(ctx.rpc("core.psx"), columns=["IDX", "PID", "DSC"])
