"""Fixtures for the RPC server tests: a stand-in router made of the real registries."""
from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from kamrouter.core.settings import Settings
from kamrouter.rpc.config import RpcConfig
from kamrouter.net import Endpoint
from kamrouter.rpc.core_methods import register_core_methods
from kamrouter.rpc.registry import MethodRegistry
from kamrouter.stats import StatsRegistry


@dataclass
class StandInRouter:
    """The attributes the control plane reads from kamrouter.core.router.Router."""

    stats: StatsRegistry = field(default_factory=StatsRegistry)
    rpc: MethodRegistry = field(default_factory=MethodRegistry)
    started_at: float = field(default_factory=time.time)
    sockets: list[Endpoint] = field(default_factory=lambda: [Endpoint("udp", "127.0.0.1", 5060)])
    settings: Settings = field(default_factory=Settings)


@pytest.fixture
def router() -> StandInRouter:
    router = StandInRouter()
    register_core_methods(router.rpc, router)
    return router


@pytest.fixture
def run_dir() -> Iterator[str]:
    """A short directory (Unix socket paths are limited to 107 bytes)."""
    path = tempfile.mkdtemp(prefix="krpc-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rpc_config(run_dir: str) -> RpcConfig:
    return RpcConfig(run_dir=f"{run_dir}/run")
