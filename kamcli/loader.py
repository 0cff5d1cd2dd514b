"""The root command group: commands imported only when used.

Built-in commands are listed in :data:`kamcli.commands.BUILTIN_COMMANDS` as ``name ->
"module:attribute"``; third-party packages add commands through the ``kamcli.commands``
entry-point group (``[project.entry-points."kamcli.commands"] sipcheck =
"kamcli_sipcheck:cli"``). A command whose module fails to import is still listed, with the
error, and running it reports the error with exit code 4 -- never "No such command".
Aliases from the config file's ``[aliases]`` table expand to whole command lines.
"""
from __future__ import annotations

import difflib
import importlib
import shlex
import traceback
from functools import cache
from typing import TYPE_CHECKING, Any

import click

from kamcli.commands import ALIASES, BUILTIN_COMMANDS
from kamcli.errors import CommandLoadFailed

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "kamcli.commands"


@cache
def plugin_entry_points() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points  # ~20 ms: only when a plugin may be involved

    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry_point.name, entry_point)
    return found


def command_source(name: str) -> tuple[str, str]:
    """``(origin, "module:attribute")`` of a command: ``built-in`` or ``plugin DIST VERSION``."""
    if name in BUILTIN_COMMANDS:
        return "built-in", BUILTIN_COMMANDS[name]
    entry_point = plugin_entry_points().get(name)
    if entry_point is None:
        return "unknown", ""
    dist = entry_point.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
    return f"plugin {package}", entry_point.value


def command_origin(name: str) -> str:
    """Where a command comes from, for messages."""
    origin, target = command_source(name)
    return f"{origin} {target}".strip()


def _load_builtin(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class AliasGroup(click.Group):
    """A command group that also answers to other names (the reference kamcli's), not listed
    in --help: ``@click.group("htable", cls=AliasGroup, aliases={"list": "dump"})``."""

    def __init__(self, *args: Any, aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases = aliases or {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))


class KamcliGroup(click.Group):
    """A group whose commands are imported on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(BUILTIN_COMMANDS) | set(plugin_entry_points()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = ALIASES.get(cmd_name, cmd_name)
        if name in self._loaded:
            return self._loaded[name]
        if name in BUILTIN_COMMANDS:
            loader = lambda: _load_builtin(BUILTIN_COMMANDS[name])  # noqa: E731
        elif name in plugin_entry_points():
            loader = plugin_entry_points()[name].load
        else:
            return None
        try:
            command = loader()
            if not isinstance(command, click.Command):
                raise TypeError(f"{type(command).__name__} is not a click command or group")
        except Exception as exc:  # any failure must surface as this command's error
            command = broken_command(name, command_origin(name), exc)
        self._loaded[name] = command
        return command

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and self.get_command(ctx, args[0]) is None:
            from kamcli.options import file_settings

            aliases = file_settings(ctx).aliases
            expansion = aliases.get(args[0])
            if expansion:
                args = [*shlex.split(expansion), *args[1:]]
            elif not ctx.resilient_parsing and not args[0].startswith("-"):
                known = [*self.list_commands(ctx), *ALIASES, *aliases]
                close = difflib.get_close_matches(args[0], known, n=1)
                ctx.fail(f"no such command {args[0]!r}"
                         + (f" (did you mean {close[0]!r}?)" if close else ""))
        return super().resolve_command(ctx, args)


def broken_command(name: str, origin: str, error: BaseException) -> click.Command:
    """A stand-in that tells, when listed or run, why command ``name`` failed to load."""
    reason = f"{type(error).__name__}: {error}"
    details = "".join(traceback.format_exception(error))

    def fail() -> None:
        root = click.get_current_context().find_root()
        if root.params.get("debug"):
            click.echo(details, err=True, nl=False)
        raise CommandLoadFailed(f"command {name!r} ({origin}) failed to load: {reason} "
                                "(reinstall it, or run with -d for the traceback)")

    return click.Command(
        name, callback=fail, add_help_option=False,
        short_help=f"[failed to load: {reason}]",
        help=f"This command ({origin}) failed to load: {reason}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
