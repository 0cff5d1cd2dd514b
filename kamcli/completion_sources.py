"""Dynamic completion values shared by shell completion (bash/zsh/fish) and ``kamcli shell``."""
from __future__ import annotations

import click
from click.shell_completion import CompletionItem


def _kamcli_context(ctx: click.Context):  # -> kamcli.context.Context
    """The run's kamcli Context; during bash/zsh/fish completion none exists yet (the root
    callback does not run), so one is built from the options typed so far."""
    from kamcli.context import Context
    from kamcli.options import resolve_options

    root = ctx.find_root()
    if not isinstance(root.obj, Context):
        root.obj = Context(resolve_options(root))
    return root.obj


def complete_method(ctx: click.Context, param: click.Parameter,
                    incomplete: str) -> list[CompletionItem]:
    """RPC method names from the router's ``system.listMethods``; none when unreachable."""
    try:
        names = _kamcli_context(ctx).method_names()
    except click.ClickException:  # bad options or config: completion stays quiet
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]
