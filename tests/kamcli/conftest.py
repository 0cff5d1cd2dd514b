"""A real kamrouter process for the kamcli tests, and a way to run the real kamcli.

The router runs with no ``[rpc] run_dir``: it and kamcli both find the control socket through
``$XDG_RUNTIME_DIR`` (set to a temporary directory for both), which is what lets a bare
``kamcli uptime`` reach a bare ``kamrouter``. Every RPC transport is enabled.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import TEST_WORKERS, workers_ready
from support.rpc import rpc_call
from support.wait import WaitTimeout, wait_until

BIN = Path(sys.executable).parent
#: [core] alias of the test router (names under .invalid: nothing resolves them).
ALIASES = ("proxy.kamcli.invalid", "edge.kamcli.invalid:5070")


def rpc_socket_accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


@dataclass
class Router:
    process: subprocess.Popen[bytes]
    home: Path            # HOME, XDG dirs and working directory of kamcli runs
    env: dict[str, str]   # the environment both processes share
    sip_port: int
    http_port: int
    stream_socket: str
    dgram_socket: str
    fifo: str
    fifo_reply_dir: str
    log: Path

    def kamcli(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the installed ``kamcli`` console script (stdout is a pipe, not a terminal)."""
        return subprocess.run([str(BIN / "kamcli"), *args], input=stdin, capture_output=True,
                              text=True, env={**self.env, **(env or {})},
                              cwd=cwd or self.home, timeout=60)

    def kamcli_json(self, *args: str) -> object:
        done = self.kamcli("-o", "json", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def start_router(workdir: Path, extra_config: str = "") -> Router:
    """A router in ``workdir`` with every RPC transport; ``extra_config`` is appended to its
    TOML config (module sections)."""
    home = workdir / "home"
    runtime = workdir / "xdg-runtime"
    for path in (home, runtime):
        path.mkdir(mode=0o700)
    replies = workdir / "replies"
    replies.mkdir()
    sip_port, http_port = free_port(), free_port()
    config = workdir / "kamrouter.toml"
    config.write_text(f"""
[core]
listen = ["udp:{LOOPBACK}:{sip_port}", "tcp:{LOOPBACK}:{sip_port}"]
workers = {TEST_WORKERS}
alias = ["{ALIASES[0]}", "{ALIASES[1]}"]
[rpc]
dgram_socket = "kamrouter_rpc.dgram"
fifo = "kamrouter_rpc.fifo"
fifo_reply_dir = "{replies}"
http = "{LOOPBACK}:{http_port}"
{extra_config}""")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "XDG_RUNTIME_DIR": str(runtime), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_STATE_HOME": str(home / ".local/state"), "LANG": "C.UTF-8", "COLUMNS": "120"}
    run_dir = runtime / "kamrouter"
    router = Router(_spawn(workdir, env), home, env, sip_port, http_port,
                    str(run_dir / "kamrouter_rpc.sock"), str(run_dir / "kamrouter_rpc.dgram"),
                    str(run_dir / "kamrouter_rpc.fifo"), str(replies), workdir / "kamrouter.log")
    _wait_until_up(router)
    return router


def _spawn(workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(workdir / "kamrouter.log", "ab") as out:
        return subprocess.Popen([str(BIN / "kamrouter"), "-c", str(workdir / "kamrouter.toml")],
                                env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)


def _wait_until_up(router: Router) -> None:
    process = router.process
    try:
        wait_until(lambda: process.poll() is not None or rpc_socket_accepts(router.stream_socket),
                   "kamrouter's control socket", timeout=30, interval=0.05)
        if TEST_WORKERS > 1:  # the control socket is up before the workers serve SIP
            wait_until(lambda: process.poll() is not None
                       or workers_ready(rpc_call(router.stream_socket, "core.psx")[1:]),
                       "kamrouter's workers", timeout=30, interval=0.05)
        up = process.poll() is None
    except WaitTimeout:
        up = False
    if not up:
        stop_router(router)
        pytest.fail(f"kamrouter did not come up:\n{router.log.read_text()}")


def start_again(router: Router) -> None:
    """Start a stopped router again with the same config, sockets and ports."""
    router.process = _spawn(router.log.parent, router.env)
    _wait_until_up(router)


def stop_router(router: Router) -> None:
    if router.process.poll() is None:
        router.process.terminate()
        try:
            router.process.wait(10)
        except subprocess.TimeoutExpired:
            router.process.kill()
            router.process.wait()


@pytest.fixture(scope="session")
def router() -> Iterator[Router]:
    workdir = Path(tempfile.mkdtemp(prefix="kcli-"))  # short: Unix socket paths are limited
    started = start_router(workdir)
    yield started
    stop_router(started)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def modules_router() -> Iterator[Router]:
    """A router of its own (a test may restart it) with an htable "users" and dispatcher
    sets 1 and 7 (no probing: nothing listens at their destinations)."""
    workdir = Path(tempfile.mkdtemp(prefix="kcli-mod-"))
    (workdir / "dispatcher.list").write_text(f"1 sip:127.0.0.1:{free_port()}\n"
                                             f"7 sip:127.0.0.1:{free_port()}\n")
    started = start_router(workdir, '[dispatcher]\nlist_file = "dispatcher.list"\n'
                                    'ping_interval = 0\n[[htable]]\nname = "users"\n')
    yield started
    stop_router(started)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def unused_port() -> int:
    return free_port()
