"""The object every command receives: RPC access, output, messages, confirmation.

    from kamcli.context import Context, pass_context

    @cli.command("get")
    @pass_context
    def get(ctx: Context, table: str, key: str) -> None:
        result = ctx.rpc("htable.get", table, key)    # RpcFault -> exit 1, Unreachable -> 3
        ctx.output(result, columns=["key", "value"], title=f"htable {table}")
        ctx.info("done")                               # stderr, never stdout

One connection is opened on first use and reused (``kamcli shell``, ``--watch`` loops).
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from kamcli.client import Params, RpcClient, build_request
from kamcli.errors import RpcFault, Unreachable
from kamcli.output import render
from kamcli.transport import Target, open_transport

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class Options:
    """kamcli's settings after merging command line, environment and config file."""

    target: Target
    output_format: str
    timeout: float = 5.0
    debug: bool = False
    fifo_reply_dir: str = "/tmp"
    history_file: str = ""
    #: HTTP credentials file (token or user:password), for an authenticated HTTP endpoint.
    token_file: str | None = None
    config_path: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)


class Context:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.output_format = options.output_format
        self._client: RpcClient | None = None
        self._console: Console | None = None
        self._method_names: list[str] | None = None

    @property
    def debug(self) -> bool:
        return self.options.debug

    @property
    def console(self) -> Console:
        """A Rich console on stdout (created on first use: Rich costs ~30 ms to import)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console()
        return self._console

    # -- RPC -----------------------------------------------------------------------------

    def rpc(self, method: str, *params: Any) -> Any:
        """Call ``method`` with positional params; return its result."""
        return self.call(method, list(params))

    def call(self, method: str, params: Params) -> Any:
        """Call ``method`` with a params array or object; return its result."""
        if self._client is None:
            transport = open_transport(self.options.target, self.options.timeout,
                                       self.options.fifo_reply_dir, self.options.token_file)
            self._client = RpcClient(transport, str(self.options.target))
        if self.debug:
            self.info(f"-> {self.options.target}: {method} {json.dumps(params)}")
        result = self._client.call(method, params)
        if self.debug:
            self.info(f"<- {method}: {len(json.dumps(result))} bytes of result")
        return result

    def request_preview(self, method: str, params: Params) -> dict[str, Any]:
        """The request document ``call`` would send (for ``--dry-run``)."""
        return build_request(method, params, 1)

    def method_names(self) -> list[str]:
        """The router's RPC methods (fetched once; empty when the router cannot tell)."""
        if self._method_names is None:
            try:
                names = self.rpc("system.listMethods")
            except (RpcFault, Unreachable):
                names = []
            self._method_names = [n for n in names if isinstance(n, str)]
        return self._method_names

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- output --------------------------------------------------------------------------

    def output(self, result: Any, *, columns: Sequence[str] | None = None,
               title: str | None = None) -> None:
        """Print ``result`` on stdout in the chosen format (table/json/yaml/raw)."""
        render(result, self.output_format, lambda: self.console, columns=columns, title=title)

    @contextmanager
    def fetching(self, what: str) -> Iterator[None]:
        """A spinner on stderr while a possibly long request runs (on a terminal only)."""
        if not sys.stderr.isatty():
            yield
            return
        from rich.console import Console

        with Console(stderr=True).status(f"{what}…"):
            yield

    def info(self, message: str) -> None:
        """A message for the user, on stderr."""
        click.echo(message, err=True)

    def warn(self, message: str) -> None:
        click.echo(f"Warning: {message}", err=True)

    def confirm(self, question: str, assume_yes: bool = False) -> bool:
        """True when confirmed (or ``assume_yes``); aborts the command (exit 1) otherwise.

        Without a terminal to ask on, refuses with a usage error unless ``assume_yes``.
        """
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            raise click.UsageError(f"{question} -- not asking without a terminal; "
                                   "pass -y/--yes to confirm")
        if click.confirm(question, default=False, err=True):
            return True
        raise click.Abort()


pass_context = click.make_pass_decorator(Context)
