"""``plugins``: every command kamcli knows, where it comes from, and whether it loads."""
from __future__ import annotations

import click

from kamcli.commands import BUILTIN_COMMANDS
from kamcli.context import Context, pass_context
from kamcli.loader import command_source, plugin_entry_points


@click.command("plugins")
@click.option("--failed", is_flag=True, help="Only the commands that fail to load.")
@pass_context
def plugins(ctx: Context, failed: bool) -> None:
    """List built-in and plugin commands with their load status."""
    root_ctx = click.get_current_context().find_root()
    group = root_ctx.command
    assert isinstance(group, click.Group)
    rows = []
    for name in sorted(set(BUILTIN_COMMANDS) | set(plugin_entry_points())):
        command = group.get_command(root_ctx, name)
        short_help = command.get_short_help_str(200) if command is not None else ""
        broken = short_help.startswith("[failed to load:")
        if failed and not broken:
            continue
        origin, target = command_source(name)
        rows.append({"command": name, "origin": origin, "module": target,
                     "status": short_help[1:-1] if broken else "ok"})
    ctx.output(rows, columns=["command", "origin", "module", "status"])
