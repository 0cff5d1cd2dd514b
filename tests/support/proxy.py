"""A proxy under test (kamrouter or Kamailio) as a process: config files, start, readiness, stop.

Readiness is the same for both: the TCP listener on the proxy's port accepts a connection.
A proxy that exits before that fails the start with its own output in the message.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .ports import LOOPBACK, tcp_accepts
from .rpc import rpc_call

KAMAILIO = "/usr/sbin/kamailio"
TomlValue = str | int | float | bool | Sequence[Any] | Mapping[str, Any]


class ProxyStartError(AssertionError):
    """The proxy exited or never listened; the message carries its output."""


class ProxyProcess:
    """One proxy process listening on UDP and TCP ``host`` (127.0.0.1):``port``."""

    def __init__(self, kind: str, argv: list[str], port: int, workdir: Path,
                 env: Mapping[str, str] | None = None, host: str = LOOPBACK,
                 workers: int = 1) -> None:
        self.kind = kind
        #: kamrouter's worker processes: above 1, start() waits for them too (the
        #: supervisor listens before any worker serves).
        self.workers = workers
        self.argv = argv
        self.host = host
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / f"{kind}.log"
        self._env = {**os.environ, **env} if env else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.kind} is not running")
        return self._process.pid

    def start(self, timeout: float = 30) -> ProxyProcess:
        with open(self.log_path, "wb") as log:
            # Own session: stop() can signal the proxy's whole process group (Kamailio forks).
            self._process = subprocess.Popen(self.argv, cwd=self.workdir, env=self._env,
                                             stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not tcp_accepts(self.port, host=self.host):
            if self._process.poll() is not None:
                raise ProxyStartError(f"{self.kind} exited with {self._process.returncode} "
                                      f"before listening on tcp:{self.address}\n"
                                      f"{' '.join(self.argv)}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ProxyStartError(f"{self.kind} not listening on tcp:{self.address} after "
                                      f"{timeout:g} s\n{self.log_tail()}")
            time.sleep(0.05)
        if self.workers > 1:
            self.wait_workers_ready(max(1.0, deadline - time.monotonic()))
        return self

    def rpc(self, method: str, *params: Any) -> Any:
        """A JSON-RPC call on kamrouter's control socket (``run_dir`` = workdir/run)."""
        return rpc_call(self.workdir / "run" / "kamrouter_rpc.sock", method, *params)

    def wait_workers_ready(self, timeout: float = 30) -> None:
        """kamrouter with ``[core] workers``: wait until core.psx shows every worker ready."""
        deadline = time.monotonic() + timeout
        while True:
            workers = self.rpc("core.psx")[1:]
            if workers_ready(workers):
                break
            if time.monotonic() > deadline:
                raise ProxyStartError(f"workers not ready after {timeout:g} s: {workers}\n"
                                      f"{self.log_tail()}")
            time.sleep(0.05)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        if self._process is None:
            return
        if self._process.poll() is not None:
            return
        self._process.terminate()  # Kamailio's main process stops its workers itself
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
            self._process.wait()

    def log_tail(self, max_chars: int = 8000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text if len(text) <= max_chars else "[...]\n" + text[-max_chars:]

    def _kill_group(self) -> None:
        assert self._process is not None
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def workers_ready(workers: list[dict[str, Any]]) -> bool:
    """Whether core.psx's rows after the supervisor's show every worker serving."""
    return bool(workers) and all("starting" not in w["DSC"] and w["PID"] for w in workers)


#: The workers of a router a test starts without naming them: 1, since the default (one
#: per CPU) would make every test run two processes on CI's two cores, and many tests check
#: what one process does (its one outgoing TCP connection per next hop, its counters); the
#: e2e suite runs with 1 and 2 (``workers_too``). ``KAMROUTER_TEST_WORKERS=2 make test``
#: runs every such router with two workers instead.
TEST_WORKERS = int(os.environ.get("KAMROUTER_TEST_WORKERS", "1"))


def kamrouter_proxy(workdir: Path, port: int, *, script: Path | str | None = None,
                    tm: Mapping[str, int] | None = None,
                    env: Mapping[str, str] | None = None,
                    sections: Mapping[str, Mapping[str, TomlValue]
                                      | Sequence[Mapping[str, TomlValue]]] | None = None,
                    ) -> ProxyProcess:
    """kamrouter on udp+tcp:``port`` with a routing script (a path, or its source text;
    None: the built-in default), [tm] settings and any further config ``sections``
    (merged key by key into the tables written here; a list is an array of tables,
    ``[[htable]]``); not started yet."""
    workdir.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "core": {"listen": [f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}"]},
        "rpc": {"run_dir": str(workdir / "run")},
    }
    if isinstance(script, str):
        script_path = workdir / "routes.py"
        script_path.write_text(script)
        script = script_path
    if script is not None:
        document["routing"] = {"script": str(script)}
    if tm:
        document["tm"] = dict(tm)
    for table, values in (sections or {}).items():
        if isinstance(values, Mapping):
            document.setdefault(table, {}).update(values)
        else:
            document[table] = list(values)
    config = workdir / "kamrouter.toml"
    text = toml_document(document)
    config.write_text(text)
    workers = tomllib.loads(text)["core"].get("workers", 1)
    return ProxyProcess("kamrouter", [kamrouter_binary(), "-c", str(config)], port, workdir,
                        env, workers=workers if isinstance(workers, int) and workers > 0
                        else os.cpu_count() or 1)  # "auto", 0: one per CPU


def kamailio_proxy(workdir: Path, port: int, *, cfg: Path,
                   defines: Mapping[str, str | int] | None = None,
                   children: int = 1, shm_mb: int = 64,
                   listens: Sequence[str] = ()) -> ProxyProcess:
    """Kamailio in the foreground on udp+tcp:``port`` with ``cfg``; not started yet.

    ``defines`` become pre-processor defines: strings as string literals (-A NAME="value"),
    ints bare (-A NAME=2000); ``children`` is the number of worker processes per listening
    socket (-n for UDP, -N for TCP); ``listens`` are further sockets (e.g. ``tls:IP:PORT``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = workdir / "run"
    run_dir.mkdir(exist_ok=True)
    argv = [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-Y", str(run_dir), "-w", str(workdir),
            "-m", str(shm_mb), "-n", str(children), "-N", str(children),
            "-l", f"udp:{LOOPBACK}:{port}", "-l", f"tcp:{LOOPBACK}:{port}"]
    for listen in listens:
        argv += ["-l", listen]
    for name, value in (defines or {}).items():
        argv += ["-A", f"{name}={json.dumps(value)}"]
    return ProxyProcess("kamailio", argv, port, workdir)


def kamrouter_binary() -> str:
    """The ``kamrouter`` console script next to this interpreter (the project venv)."""
    beside = Path(sys.executable).parent / "kamrouter"
    found = str(beside) if beside.exists() else shutil.which("kamrouter")
    if found is None:
        raise RuntimeError("kamrouter is not installed: run `make install`")
    return found


def toml_document(sections: Mapping[str, Mapping[str, TomlValue]
                                     | Sequence[Mapping[str, TomlValue]]]) -> str:
    """Render flat TOML tables, a list of them as an array of tables (``[[htable]]``); JSON
    string escapes are valid TOML basic strings.

    A router config (one with ``[core]``) gets ``workers = TEST_WORKERS`` unless it names
    its workers."""
    if "core" in sections and isinstance(sections["core"], Mapping) \
            and "workers" not in sections["core"]:
        sections = {**sections, "core": {**sections["core"], "workers": TEST_WORKERS}}
    lines = []
    for table, values in sections.items():
        for header, keys in ([(f"[[{table}]]", item) for item in values]
                             if isinstance(values, Sequence) else [(f"[{table}]", values)]):
            lines.append(header)
            lines += [f"{key} = {_toml_value(value)}" for key, value in keys.items()]
            lines.append("")
    return "\n".join(lines)


def _toml_value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, Mapping):  # an inline table: { key = value, ... }
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}"
                                for k, v in value.items()) + " }"
    return "[" + ", ".join(_toml_value(item) for item in value) + "]"
