"""End-to-end pieces for API routing: kamrouter configured with extra sections, the reference
controllers as processes, and JSON-RPC calls to the router.

Built on the shared harness in tests/support (ports, proxy process, sipp lab).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from support.lab import SipLab
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, TomlValue, kamrouter_binary, toml_document

REPO = Path(__file__).resolve().parents[2]
CONTROLLERS = REPO / "examples" / "controllers"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def kamrouter_with(lab: SipLab, sections: Mapping[str, Mapping[str, TomlValue]],
                   env: Mapping[str, str] | None = None) -> ProxyProcess:
    """Start kamrouter on a free port with ``sections`` in its config (``core`` keys merge
    with the listen sockets); the lab stops it."""
    port = free_port()
    workdir = lab.workdir / "kamrouter"
    workdir.mkdir(parents=True, exist_ok=True)
    core = {"listen": [f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}"],
            **sections.get("core", {})}
    config = workdir / "kamrouter.toml"
    config.write_text(toml_document({
        **sections, "core": core, "rpc": {"run_dir": str(workdir / "run")}}))
    proxy = ProxyProcess("kamrouter", [kamrouter_binary(), "-c", str(config)], port, workdir,
                         env)
    lab.proxy = proxy
    return proxy.start()


def rpc(proxy: ProxyProcess, method: str, *params: Any) -> Any:
    """Call a JSON-RPC method on the router's control socket; return its result."""
    path = proxy.workdir / "run" / "kamrouter_rpc.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                                 "id": 1}).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    answer = json.loads(reply)
    if "error" in answer:
        raise AssertionError(f"{method}: {answer['error']}")
    return answer["result"]


def stats(proxy: ProxyProcess, group: str) -> dict[str, int | float]:
    """A statistics group as {name: value} (``stats.fetchn group:``)."""
    return {key.split(".", 1)[1]: value
            for key, value in rpc(proxy, "stats.fetchn", f"{group}:").items()}


class Controller:
    """A reference controller process (examples/controllers), stopped by :meth:`stop`."""

    def __init__(self, script: str, args: list[str], workdir: Path) -> None:
        self.log_path = workdir / f"{Path(script).stem}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(CONTROLLERS / script), *args], cwd=CONTROLLERS,
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        assert self.process.stdout is not None
        #: The controller's first line: where it listens / that it connected.
        self.banner = self.process.stdout.readline().decode().strip()
        if not self.banner:
            raise AssertionError(f"{script} exited: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def write_table(workdir: Path, table: Mapping[str, Any]) -> Path:
    path = workdir / "table.json"
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table))
    return path


def http_controller(workdir: Path, table: Mapping[str, Any]) -> tuple[Controller, str]:
    """The HTTP reference controller on a kernel-chosen port, and its URL."""
    controller = Controller("http_controller.py",
                            ["--port", "0", "--table", str(write_table(workdir, table))], workdir)
    return controller, controller.banner.rsplit(" ", 1)[1]


def evapi_controller(workdir: Path, table: Mapping[str, Any], evapi_port: int) -> Controller:
    """The evapi reference controller connected to the router's evapi socket."""
    return Controller("evapi_controller.py",
                      ["--connect", f"{LOOPBACK}:{evapi_port}",
                       "--table", str(write_table(workdir, table))], workdir)
