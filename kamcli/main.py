"""``kamcli``: operate a running kamrouter (or Kamailio's jsonrpcs) over JSON-RPC."""
from __future__ import annotations

import os
import sys

import click

from kamcli import __version__
from kamcli.config import OUTPUT_FORMATS
from kamcli.errors import EXIT_INTERNAL, error_line
from kamcli.loader import KamcliGroup

EPILOG = """\b
With no options kamcli talks to kamrouter's default control socket
($XDG_RUNTIME_DIR/kamrouter/kamrouter_rpc.sock, or /tmp/kamrouter-$UID/...).
Options can also come from KAMCLI_CONFIG, KAMCLI_SOCKET, KAMCLI_URL, KAMCLI_OUTPUT,
KAMCLI_TIMEOUT, KAMCLI_DEBUG and from kamcli.toml (./, ~/.config/kamcli/, /etc/kamcli/).

\b
Exit codes: 0 ok, 1 the router answered with an error, 2 usage or config error,
3 cannot connect / timed out, 4 a command module failed to load, 70 a kamcli bug.
"""


@click.group(cls=KamcliGroup, epilog=EPILOG, invoke_without_command=True,
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

    if click_ctx.invoked_subcommand is None:
        click.echo(click_ctx.get_help())
        return
    if not isinstance(click_ctx.obj, Context):
        click_ctx.obj = Context(resolve_options(click_ctx))
        click_ctx.call_on_close(click_ctx.obj.close)


def main() -> None:
    """Console entry point: Click's standalone handling, but every failure in one line on
    stderr, Ctrl-C = 130 (not Click's 1, which means "the router answered with an error")
    and quiet ends of closed pipes."""
    try:
        status = cli.main(prog_name="kamcli", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(error_line(exc), err=True)
        status = exc.exit_code
    except click.Abort as exc:
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("Interrupted." if interrupted else "Aborted!", err=True)
        status = 130 if interrupted else 1
    except BrokenPipeError:  # e.g. `kamcli stats | head -3`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 141
    except Exception as exc:  # a kamcli bug: one line, the traceback only when asked (-d)
        if "-d" in sys.argv[1:] or "--debug" in sys.argv[1:] or os.environ.get("KAMCLI_DEBUG"):
            raise
        click.echo(f"Error: internal error: {type(exc).__name__}: {exc} (run with -d for the "
                   "traceback)", err=True)
        status = EXIT_INTERNAL
    sys.exit(status if isinstance(status, int) else 0)
