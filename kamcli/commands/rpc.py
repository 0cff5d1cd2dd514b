"""``rpc``/``jsonrpc``: call any RPC method; ``rpcmethods`` and ``rpchelp``."""
from __future__ import annotations

import json

import click

from kamcli.completion_sources import complete_method
from kamcli.context import Context, pass_context
from kamcli.errors import RpcFault
from kamcli.params import parse_params


@click.command("rpc", context_settings={"ignore_unknown_options": True})
@click.argument("method", required=False, shell_complete=complete_method)
@click.argument("params", nargs=-1, type=click.UNPROCESSED)
@click.option("-l", "--list", "list_methods", is_flag=True,
              help="List the router's methods instead (as rpcmethods).")
@click.option("--dry-run", is_flag=True, help="Print the request document; send nothing.")
@click.option("-n", "--named", is_flag=True,
              help="PARAMS are NAME=VALUE pairs, sent as a JSON object.")
@pass_context
def rpc(ctx: Context, method: str | None, params: tuple[str, ...], list_methods: bool,
        dry_run: bool, named: bool) -> None:
    """Call METHOD with PARAMS and print the result.

    \b
    Each PARAM is read as JSON: 42 is an integer, 1.5 a number, true/false/null,
    [1,2] an array, {"a":1} an object; anything else is a string.
    s:TEXT forces a string (s:42), i:N an integer.

    \b
    Examples:
      kamcli rpc core.uptime
      kamcli rpc htable.sets users s:1000 alice
      kamcli rpc --named htable.get table=users key=s:1000
    """
    if list_methods:
        _list_methods(ctx)
        return
    if method is None:
        raise click.UsageError("missing METHOD (or use --list)")
    rpc_params = parse_params(params, named)
    if dry_run:
        click.echo(json.dumps(ctx.request_preview(method, rpc_params), indent=2,
                              ensure_ascii=False))
        return
    ctx.output(ctx.call(method, rpc_params))


@click.command("rpcmethods")
@pass_context
def rpcmethods(ctx: Context) -> None:
    """List the RPC methods of the router (system.listMethods)."""
    _list_methods(ctx)


def _list_methods(ctx: Context) -> None:
    ctx.output(ctx.rpc("system.listMethods"), columns=["method"])


@click.command("rpchelp")
@click.argument("method", shell_complete=complete_method)
@pass_context
def rpchelp(ctx: Context, method: str) -> None:
    """Show the help text of an RPC METHOD (system.methodHelp).

    On a terminal the parameters come first (system.methodSignature), when the router
    tells them as kamrouter does: htable.get(table, key).
    """
    text = ctx.rpc("system.methodHelp", method)
    if ctx.output_format == "table":
        try:
            usage = ctx.rpc("system.methodSignature", method)
        except RpcFault:  # Kamailio has no signatures to tell
            usage = None
        if isinstance(usage, str) and usage.startswith(f"{method}("):
            text = f"{usage}\n{text}"
    ctx.output(text)
