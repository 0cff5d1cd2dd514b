"""A Redis-backed table on a real three-node Redis Cluster (redis+cluster:// URL): sync,
writes, expiry and flush reach the other node, as on a single server."""
from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port, tcp_accepts
from support.wait import await_until, wait_until

from .conftest import REDIS_SERVER
from .test_redis import nodes

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


async def test_shared_table_on_a_cluster(tmp_path: Path, cluster_url: str) -> None:
    async with nodes(tmp_path, ClusterServer(cluster_url)) as (a, b):  # type: ignore[arg-type]
        a.api.set("shared", "10.0.0.1", "banned")
        a.api.inc("shared", "calls")
        b.api.inc("shared", "calls")
        await await_until(lambda: b.api.get("shared", "10.0.0.1") == "banned"
                         and a.api.get("shared", "calls") == b.api.get("shared", "calls") == 2,
                         "writes and counters on both")
        async with nodes(tmp_path / "late", ClusterServer(cluster_url), count=1) as (late,):
            assert late.api.get("shared", "10.0.0.1") == "banned"  # synced before serving
            assert late.api.get("shared", "calls") == 2
        a.api.set("shared", "short", 1, expire=0.3)
        await await_until(lambda: b.api.has("shared", "short"), "short-lived item on b")
        await await_until(lambda: not b.api.has("shared", "short"), "expired on b")
        b.api.flush("shared")
        await await_until(lambda: a.api.items("shared") == [], "flushed on a")
