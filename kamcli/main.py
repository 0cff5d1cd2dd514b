"""``kamcli``: operate a running kamrouter (or Kamailio's jsonrpcs) over JSON-RPC."""
from __future__ import annotations

import click

from kamcli import __version__
from kamcli.config import OUTPUT_FORMATS
from kamcli.loader import KamcliGroup

EPILOG = """\b
With no options kamcli talks to kamrouter's default control socket
($XDG_RUNTIME_DIR/kamrouter/kamrouter_rpc.sock, or /tmp/kamrouter-$UID/...).
Options can also come from KAMCLI_CONFIG, KAMCLI_SOCKET, KAMCLI_URL, KAMCLI_OUTPUT,
KAMCLI_TIMEOUT, KAMCLI_DEBUG and from kamcli.toml (./, ~/.config/kamcli/, /etc/kamcli/).

\b
Exit codes: 0 ok, 1 the router answered with an error, 2 usage or config error,
3 cannot connect / timed out, 4 a command module failed to load.
"""


@click.group(cls=KamcliGroup, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", metavar="FILE", envvar="KAMCLI_CONFIG",
              help="Config file (TOML); replaces the default search.")
@click.option("-s", "--socket", metavar="PATH", envvar="KAMCLI_SOCKET",
              help="Control socket or FIFO path (stream, datagram or FIFO: detected).")
@click.option("-u", "--url", metavar="URL", envvar="KAMCLI_URL",
              help="http://HOST:PORT/RPC, unix:PATH, dgram:PATH or fifo:PATH.")
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), envvar="KAMCLI_OUTPUT",
              help="Output format [default: table on a terminal, json otherwise].")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              envvar="KAMCLI_TIMEOUT", help="How long to wait for a reply [default: 5].")
@click.option("-d", "--debug", is_flag=True, envvar="KAMCLI_DEBUG",
              help="Show requests, replies and tracebacks on stderr.")
@click.version_option(__version__, "-V", "--version", prog_name="kamcli")
@click.pass_context
def cli(click_ctx: click.Context, **_: object) -> None:
    """Operate a running kamrouter over JSON-RPC."""
    from kamcli.context import Context
    from kamcli.options import resolve_options

    if not isinstance(click_ctx.obj, Context):
        click_ctx.obj = Context(resolve_options(click_ctx))
        click_ctx.call_on_close(click_ctx.obj.close)


def main() -> None:
    cli(prog_name="kamcli")
