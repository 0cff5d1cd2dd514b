"""A real redis-server on a free loopback port for the tests (fixture ``redis_server``)."""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import free_port, tcp_accepts
from support.wait import wait_until


class RedisServer:
    """A real redis-server on a free loopback port, appending to a file in ``workdir`` so a
    restart keeps the data (as a production Redis with persistence would)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.workdir), "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process = self.process
        wait_until(lambda: tcp_accepts(self.port, timeout=0.2) or process.poll() is not None,
                   f"redis-server listening on port {self.port}")
        assert process.poll() is None, f"redis-server exited with {process.returncode}"
        return self

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
