"""kamcli's own settings: TOML config file, environment and command line, merged.

Precedence, highest first: command-line options, ``KAMCLI_*`` environment variables, the
config file, built-in defaults. The config file is ``-c FILE`` when given (only that file),
else the first that exists of ``./kamcli.toml``, ``~/.config/kamcli/kamcli.toml`` and
``/etc/kamcli/kamcli.toml``. Example::

    socket = "/run/kamrouter/kamrouter_rpc.sock"   # or: url = "http://127.0.0.1:5071/RPC"
    token_file = "~/.config/kamcli/token"   # HTTP credentials (or KAMCLI_TOKEN_FILE)
    output = "table"            # table | json | yaml | raw
    timeout = 5.0
    fifo_reply_dir = "/tmp"     # where FIFO replies are read (the server's fifo_reply_dir)
    history_file = "~/.local/state/kamcli/history"

    [aliases]                   # extra command names: alias = "command line"
    up = "uptime"
    dv = "rpc core.version"
"""
from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from kamcli.errors import ConfigFileError
from kamcli.paths import config_search_path

OUTPUT_FORMATS = ("table", "json", "yaml", "raw")


@dataclass
class FileSettings:
    """What a config file may set (None: not set there)."""

    path: str | None = None
    socket: str | None = None
    url: str | None = None
    output: str | None = None
    timeout: float | None = None
    debug: bool | None = None
    fifo_reply_dir: str | None = None
    history_file: str | None = None
    token_file: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)


_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "socket": (str,), "url": (str,), "output": (str,), "timeout": (int, float),
    "debug": (bool,), "fifo_reply_dir": (str,), "history_file": (str,), "token_file": (str,),
    "aliases": (dict,),
}


def find_config_file(explicit: str | None) -> str | None:
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigFileError(f"config file {explicit}: not found")
        return explicit
    return next((path for path in config_search_path() if os.path.isfile(path)), None)


def load_file_settings(explicit: str | None) -> FileSettings:
    path = find_config_file(explicit)
    if path is None:
        return FileSettings()
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"config file {path}: {exc}") from None
    return _validate(path, raw)


def _validate(path: str, raw: dict[str, Any]) -> FileSettings:
    problems = []
    for key, value in raw.items():
        accepted = _KEY_TYPES.get(key)
        if accepted is None:
            close = difflib.get_close_matches(key, _KEY_TYPES, n=1)
            problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)"
                                                       if close else ""))
        elif not _fits(value, accepted):
            problems.append(f"{key}: expected {_describe(accepted)}, got {value!r}")
    if raw.get("output") is not None and raw.get("output") not in OUTPUT_FORMATS:
        problems.append(f"output: expected one of {', '.join(OUTPUT_FORMATS)}, "
                        f"got {raw['output']!r}")
    for name, expansion in (raw.get("aliases") or {}).items():
        if not isinstance(expansion, str) or not expansion.strip():
            problems.append(f"aliases.{name}: expected a command line string")
    if problems:
        raise ConfigFileError(f"config file {path}: " + "; ".join(problems))
    settings = FileSettings(path=path, **{k: v for k, v in raw.items()})
    if settings.timeout is not None:
        settings.timeout = float(settings.timeout)
    return settings


def _fits(value: Any, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int to isinstance, not to a config reader
        return bool in accepted
    return isinstance(value, accepted)


def _describe(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true or false",
             dict: "a table"}
    return " or ".join(dict.fromkeys(names[t] for t in types))
