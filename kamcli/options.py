"""Merging kamcli's global options: command line > ``KAMCLI_*`` environment > config file >
defaults (the default target being kamrouter's default stream socket)."""
from __future__ import annotations

import os
import sys

import click
from click.core import ParameterSource

from kamcli.config import FileSettings, load_file_settings
from kamcli.context import Options
from kamcli.paths import default_history_file, default_socket
from kamcli.transport import Target

DEFAULT_TIMEOUT = 5.0
_FILE_SETTINGS_KEY = "kamcli.file_settings"


def file_settings(root: click.Context) -> FileSettings:
    """The config file's settings, read once per run (aliases are needed before options)."""
    if _FILE_SETTINGS_KEY not in root.meta:
        root.meta[_FILE_SETTINGS_KEY] = load_file_settings(root.params.get("config"))
    return root.meta[_FILE_SETTINGS_KEY]


def _rank(root: click.Context, name: str) -> int:
    """3: given on the command line, 2: from the environment, 0: not given."""
    if root.params.get(name) is None:
        return 0
    source = root.get_parameter_source(name)
    return 3 if source in (ParameterSource.COMMANDLINE, ParameterSource.PROMPT) else 2


def resolve_target(root: click.Context, settings: FileSettings) -> Target:
    socket_rank, url_rank = _rank(root, "socket"), _rank(root, "url")
    if socket_rank and socket_rank == url_rank:
        where = "command line" if socket_rank == 3 else "environment (KAMCLI_SOCKET, KAMCLI_URL)"
        raise click.UsageError(f"give either -s/--socket or -u/--url, not both ({where})")
    if socket_rank or url_rank:
        use_url = url_rank > socket_rank
        return _target(root.params["url"] if use_url else None,
                       None if use_url else root.params["socket"], "-u/--url")
    if settings.socket and settings.url:
        raise click.UsageError(f"config file {settings.path}: set either socket or url, not both")
    return _target(settings.url, settings.socket or default_socket(),
                   f"url in {settings.path}")


def _target(url: str | None, socket: str | None, origin: str) -> Target:
    if url:
        try:
            return Target.from_url(url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=origin) from None
    assert socket is not None
    return Target.from_socket(socket)


def resolve_options(root: click.Context) -> Options:
    settings = file_settings(root)
    params = root.params
    output = params.get("output") or settings.output or (
        "table" if sys.stdout.isatty() else "json")
    timeout = params.get("timeout") or settings.timeout or DEFAULT_TIMEOUT
    return Options(
        target=resolve_target(root, settings),
        output_format=output,
        timeout=timeout,
        debug=bool(params.get("debug") or settings.debug),
        fifo_reply_dir=settings.fifo_reply_dir or "/tmp",
        history_file=os.path.expanduser(settings.history_file or default_history_file()),
        token_file=os.environ.get("KAMCLI_TOKEN_FILE") or settings.token_file,
        config_path=settings.path,
        aliases=settings.aliases,
    )
