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
@click.option("-j", "--json", "as_json", is_flag=True,
              help="Read each PARAM as JSON (42, 1.5, true, null, [1,2], {\"a\":1}).")
@pass_context
def rpc(ctx: Context, method: str | None, params: tuple[str, ...], list_methods: bool,
        dry_run: bool, named: bool, as_json: bool) -> None:
    """Call METHOD with PARAMS and print the result.

    \b
    PARAMS are strings, as with the reference kamcli: 1000 is the string "1000".
    i:N sends the integer N, s:TEXT the string TEXT (s:i:x is the string "i:x").
    With --json every other PARAM is read as JSON: 42 an integer, 1.5 a number,
    true/false/null, [1,2] an array, {"a":1} an object (what is not JSON stays a string).

    \b
    Examples:
      kamcli rpc core.uptime
      kamcli rpc htable.sets users 1000 carol
      kamcli rpc htable.seti users alice i:5
      kamcli rpc --json core.echo 1.5 true '[1,2]'
      kamcli rpc --named htable.get table=users key=1000
    """
    if list_methods:
        _list_methods(ctx)
        return
    if method is None:
        raise click.UsageError("missing METHOD (or use --list)")
    rpc_params = parse_params(params, named, as_json)
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
