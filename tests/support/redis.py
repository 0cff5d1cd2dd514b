"""A real redis-server on a free loopback port for the tests (fixture ``redis_server``), and
a real three-node Redis Cluster (fixture ``cluster_url``)."""
from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port, tcp_accepts
from support.wait import wait_until


class RedisServer:
    """A real redis-server on a free loopback port, appending to a file in ``workdir`` so a
    restart keeps the data (as a production Redis with persistence would); with
    ``persist=False`` in memory only (README "Several nodes", the benchmarks)."""

    def __init__(self, workdir: Path, persist: bool = True) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.workdir), "--save", "",
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.persist
               else ["--appendonly", "no"])],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process = self.process
        wait_until(lambda: tcp_accepts(self.port, timeout=0.2) or process.poll() is not None,
                   f"redis-server listening on port {self.port}")
        assert process.poll() is None, f"redis-server exited with {process.returncode}"
        return self

    def info(self, *sections: str) -> dict[str, str]:
        """``INFO`` (of ``sections``) as name -> value."""
        text = subprocess.run([REDIS_CLI, "-p", str(self.port), "info", *sections],
                              capture_output=True, text=True, check=True, timeout=20).stdout
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


REDIS_SERVER = shutil.which("redis-server") or ""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not REDIS_SERVER:
        pytest.skip("redis-server not installed (Debian package redis-server; `make test` "
                    "installs it)")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


REDIS_CLI = shutil.which("redis-cli") or ""
#: Redis Cluster talks to its peers on port + 10000, which must be a valid, free port too.
CLUSTER_BUS_OFFSET = 10000


def cluster_port() -> int:
    while True:
        port = free_port()
        if port + CLUSTER_BUS_OFFSET < 65536 and port_is_free(port + CLUSTER_BUS_OFFSET):
            return port


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


@pytest.fixture
def cluster_url(tmp_path: Path) -> Iterator[str]:
    if not (REDIS_SERVER and REDIS_CLI):
        pytest.skip("redis-server/redis-cli not installed (Debian package redis-server)")
    ports = [cluster_port() for _ in range(3)]
    processes = []
    try:
        for port in ports:
            workdir = tmp_path / f"cluster{port}"
            workdir.mkdir()
            processes.append(subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--save", "", "--appendonly", "no"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: all(tcp_accepts(port, 0.2) for port in ports),
                   "the cluster nodes listening")
        subprocess.run([REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
        wait_until(lambda: b"cluster_state:ok" in subprocess.run(
            [REDIS_CLI, "-p", str(ports[0]), "cluster", "info"],
            capture_output=True, timeout=20).stdout, "cluster_state:ok", interval=0.05)
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:2])
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


class ClusterServer:
    """What ``nodes()`` needs of a server: its URL."""

    def __init__(self, url: str) -> None:
        self.url = url
