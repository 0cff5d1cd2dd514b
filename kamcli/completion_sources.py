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


def complete_stat(ctx: click.Context, param: click.Parameter,
                  incomplete: str) -> list[CompletionItem]:
    """Statistic selectors: groups (``core:``) and bare names before a colon is typed (bash
    splits words at colons, so it completes ``core:rcv`` as the bare ``rcv``), then
    ``group:name``."""
    try:
        fetched = _kamcli_context(ctx).rpc("stats.fetch", "all")
    except click.ClickException:
        return []
    keys = [key.replace(".", ":", 1) for key in fetched] if isinstance(fetched, dict) else []
    if ":" in incomplete:
        candidates = keys
    else:
        groups = (key.split(":", 1)[0] + ":" for key in keys)
        candidates = list(dict.fromkeys([*groups, *(key.split(":", 1)[1] for key in keys)]))
    return [CompletionItem(name) for name in candidates if name.startswith(incomplete)]


def complete_htable(ctx: click.Context, param: click.Parameter,
                    incomplete: str) -> list[CompletionItem]:
    """htable names from the router's ``htable.listTables``; none when unreachable."""
    try:
        tables = _kamcli_context(ctx).rpc("htable.listTables")
    except click.ClickException:
        return []
    names = [t.get("name") for t in tables if isinstance(t, dict)] \
        if isinstance(tables, list) else []
    return [CompletionItem(name) for name in names
            if isinstance(name, str) and name.startswith(incomplete)]


def complete_dispatcher_set(ctx: click.Context, param: click.Parameter,
                            incomplete: str) -> list[CompletionItem]:
    """Destination set ids from the router's ``dispatcher.list``; none when unreachable."""
    try:
        listing = _kamcli_context(ctx).rpc("dispatcher.list")
    except click.ClickException:
        return []
    records = listing.get("RECORDS") if isinstance(listing, dict) else None
    ids = [str(record.get("SET", {}).get("ID")) for record in records or []
           if isinstance(record, dict)]
    return [CompletionItem(setid) for setid in dict.fromkeys(ids) if setid.startswith(incomplete)]
