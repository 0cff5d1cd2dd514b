"""``mtree``: prefix trees of a running router or Kamailio (RPC ``mtree.*``).

``match TREE PREFIX`` shows the longest matching prefix and its value (``--mode 2``: every
matching prefix, longest first); ``list`` shows the prefixes and their values, ``summary``
each tree's size and reloads. PREFIX is always sent as a string.
"""
from __future__ import annotations

from typing import Any

import click

from kamcli.context import Context, pass_context

SUMMARY_COLUMNS = ["table", "ttype", "nrnodes", "nritems", "memsize", "reload_count",
                   "reload_time"]


@click.group("mtree")
def cli() -> None:
    """Prefix trees: match, list, summary, reload."""


@cli.command("match")
@click.argument("tree")
@click.argument("prefix")
@click.option("-m", "--mode", type=click.Choice(["0", "2"]), default="0", show_default=True,
              help="0: the longest matching prefix; 2: every matching prefix.")
@pass_context
def match(ctx: Context, tree: str, prefix: str, mode: str) -> None:
    """Match PREFIX (a number) against TREE: prefix and value."""
    result = ctx.rpc("mtree.match", tree, prefix, int(mode))
    rows = result if isinstance(result, list) else [result]
    ctx.output(rows, columns=["PREFIX", "TVALUE"], title=f"mtree {tree}: {prefix}")


@cli.command("list")
@click.argument("tree", required=False)
@pass_context
def list_(ctx: Context, tree: str | None) -> None:
    """Show the prefixes and values of TREE (every tree when none is given)."""
    rows = ctx.rpc("mtree.list", *([tree] if tree else []))
    ctx.output(rows, columns=["tname", "tprefix", "tvalue"],
               title=f"mtree {tree or ''} ({len(rows)} prefixes)".replace("  ", " "))


@cli.command("summary")
@click.argument("tree", required=False)
@pass_context
def summary(ctx: Context, tree: str | None) -> None:
    """Per tree: type, prefixes, values, memory, reloads."""
    result = ctx.rpc("mtree.summary", *([tree] if tree else []))
    rows: list[dict[str, Any]] = [{"table": one.get("table"), **(one.get("item") or {})}
                                  for one in result]
    ctx.output(rows, columns=SUMMARY_COLUMNS, title="mtree summary")


@cli.command("reload")
@click.argument("tree", required=False)
@pass_context
def reload(ctx: Context, tree: str | None) -> None:
    """Reload TREE (every tree when none is given) from its file; a bad file keeps the
    tree in use."""
    ctx.info(ctx.rpc("mtree.reload", *([tree] if tree else [])))
