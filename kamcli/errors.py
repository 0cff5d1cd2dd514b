"""Failures that end a kamcli run, each with its exit code and a one-line message.

Exit codes: 0 success; 1 the router answered with an error; 2 usage or configuration error;
3 cannot connect, no reply in time, or an unusable reply; 4 a command module failed to load.
"""
from __future__ import annotations

from typing import Any

import click

EXIT_RPC_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_BROKEN_COMMAND = 4


class RpcFault(click.ClickException):
    """The router answered with a JSON-RPC error object."""

    exit_code = EXIT_RPC_ERROR

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        detail = f": {data}" if data not in (None, "", method) else ""
        super().__init__(f"{method}: {message}{detail} (code {code})")
        self.method, self.code, self.rpc_message, self.data = method, code, message, data


class Unreachable(click.ClickException):
    """No conversation with the router: no socket, refused, timed out, or garbage back."""

    exit_code = EXIT_UNREACHABLE


class ConfigFileError(click.ClickException):
    """A kamcli config file that cannot be used; the message names the file and the key."""

    exit_code = EXIT_USAGE


class CommandLoadFailed(click.ClickException):
    """A built-in or plugin command module could not be imported."""

    exit_code = EXIT_BROKEN_COMMAND
