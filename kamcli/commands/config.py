"""``config``: which config file, control socket and transport this kamcli run uses."""
from __future__ import annotations

import os
from typing import Any

import click

from kamcli.context import Context, pass_context
from kamcli.errors import Unreachable
from kamcli.paths import config_search_path, default_socket
from kamcli.transport import open_transport

#: What each transport class is called for people.
_TRANSPORT_NAMES = {"StreamTransport": "Unix stream socket", "DatagramTransport":
                    "Unix datagram socket", "FifoTransport": "FIFO", "HttpTransport": "HTTP"}


@click.group("config")
def cli() -> None:
    """kamcli's own settings: show them, and where they come from."""


def transport_of(ctx: Context) -> str:
    """The transport kamcli would use for its target, as found by trying it."""
    options = ctx.options
    try:
        transport = open_transport(options.target, options.timeout, options.fifo_reply_dir)
    except Unreachable as exc:
        return f"unreachable: {exc.format_message()}"
    try:
        return _TRANSPORT_NAMES.get(type(transport).__name__, type(transport).__name__)
    finally:
        transport.close()


@cli.command("show")
@pass_context
def show(ctx: Context) -> None:
    """The settings in effect (command line > KAMCLI_* environment > config file >
    defaults), the target and the transport found there."""
    options = ctx.options
    settings: dict[str, Any] = {
        "config_file": options.config_path or "(none)",
        "target": str(options.target),
        "transport": transport_of(ctx),
        "output": options.output_format,
        "timeout": options.timeout,
        "debug": options.debug,
        "fifo_reply_dir": options.fifo_reply_dir,
        "history_file": options.history_file,
        "aliases": options.aliases,
    }
    ctx.output(settings, columns=["setting", "value"])


@cli.command("paths")
@pass_context
def paths(ctx: Context) -> None:
    """Where kamcli looks: the config files in search order (the one in use marked), the
    default control socket, the history file."""
    used = ctx.options.config_path
    rows = [{"what": "config file", "path": path,
             "state": "in use" if used and os.path.abspath(path) == os.path.abspath(used)
             else ("exists" if os.path.isfile(path) else "absent")}
            for path in config_search_path()]
    if used and all(os.path.abspath(row["path"]) != os.path.abspath(used) for row in rows):
        rows.insert(0, {"what": "config file (-c)", "path": used, "state": "in use"})
    rows.append({"what": "default control socket", "path": default_socket(),
                 "state": "exists" if os.path.exists(default_socket()) else "absent"})
    rows.append({"what": "target", "path": str(ctx.options.target), "state": transport_of(ctx)})
    rows.append({"what": "shell history", "path": ctx.options.history_file,
                 "state": "exists" if os.path.exists(ctx.options.history_file) else "absent"})
    ctx.output(rows, columns=["what", "path", "state"])
