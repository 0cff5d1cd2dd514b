"""Where kamcli looks for things when told nothing."""
from __future__ import annotations

import os

#: Name of kamrouter's default stream socket inside its run directory.
DEFAULT_SOCKET_NAME = "kamrouter_rpc.sock"


def default_run_dir() -> str:
    """``$XDG_RUNTIME_DIR/kamrouter`` or ``/tmp/kamrouter-$UID``.

    The same rule as ``kamrouter.rpc.config.default_run_dir`` (kamcli does not import
    kamrouter, since it also drives Kamailio): change both together, so that ``kamcli`` with
    no options reaches a ``kamrouter`` started with no options.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(base, "kamrouter") if base else f"/tmp/kamrouter-{os.getuid()}"


def default_socket() -> str:
    return os.path.join(default_run_dir(), DEFAULT_SOCKET_NAME)


def config_search_path() -> list[str]:
    """Config files tried in order when ``-c`` is not given; the first that exists is used."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return ["kamcli.toml", os.path.join(config_home, "kamcli", "kamcli.toml"),
            "/etc/kamcli/kamcli.toml"]


def default_history_file() -> str:
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state_home, "kamcli", "history")
