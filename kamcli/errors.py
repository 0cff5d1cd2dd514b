"""Failures that end a kamcli run, each with its exit code and a one-line message.

Exit codes: 0 success; 1 the router answered with an error; 2 usage or configuration error
(including a local file that cannot be read or written); 3 cannot connect, no reply in time,
or an unusable reply; 4 a command module failed to load; 70 a bug in kamcli (an unexpected
exception: one line, the traceback with -d).
"""
from __future__ import annotations

from typing import Any

import click

EXIT_RPC_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_BROKEN_COMMAND = 4
#: sysexits' EX_SOFTWARE: an exception kamcli did not expect.
EXIT_INTERNAL = 70
#: JSON-RPC 2.0 "Method not found".
METHOD_NOT_FOUND = -32601


class RpcFault(click.ClickException):
    """The router answered with a JSON-RPC error object."""

    exit_code = EXIT_RPC_ERROR

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        detail = f": {data}" if data not in (None, "", method) else ""
        hint = "; 'kamcli rpc --list' lists the methods" if code == METHOD_NOT_FOUND else ""
        super().__init__(f"{method}: {message}{detail} (code {code}){hint}")
        self.method, self.code, self.rpc_message, self.data = method, code, message, data


class Unreachable(click.ClickException):
    """No conversation with the router: no socket, refused, timed out, or garbage back."""

    exit_code = EXIT_UNREACHABLE


class ConfigFileError(click.ClickException):
    """A kamcli config file that cannot be used; the message names the file and the key."""

    exit_code = EXIT_USAGE


class LocalFileError(click.ClickException):
    """A file named on the command line that cannot be opened, read or written."""

    exit_code = EXIT_USAGE


class CommandLoadFailed(click.ClickException):
    """A built-in or plugin command module could not be imported."""

    exit_code = EXIT_BROKEN_COMMAND


def error_line(exc: click.ClickException, *, in_shell: bool = False) -> str:
    """The one line kamcli prints for a failure. A usage error points at the command's help
    (``kamcli stats --help``, or ``stats --help`` inside ``kamcli shell``); a global option
    given after the command (``kamcli stats -o json``) is shown where it belongs."""
    message = " ".join(exc.format_message().split())  # Click's Choice lists span lines
    line = f"Error: {message.rstrip('.')}"
    if not isinstance(exc, click.UsageError) or exc.ctx is None:
        return line
    root = exc.ctx.find_root()
    program, _, command = exc.ctx.command_path.partition(" ")
    prefix = "" if in_shell else f"{program} "  # the shell runs lines without the program
    if isinstance(exc, click.NoSuchOption) and exc.ctx is not root and any(
            exc.option_name in param.opts for param in root.command.params):
        return (f"Error: {exc.option_name} goes before the command: "
                f"{prefix}{exc.option_name} ... {command}")
    path = f"{prefix}{command}".strip()
    return line + (f"; see '{path} --help'" if path else "; type help for the commands")
