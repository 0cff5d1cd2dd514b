"""Fixtures for the RPC server tests: a stand-in router made of the real registries."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from kamrouter.rpc.config import RpcConfig
from kamrouter.rpc.core_methods import register_core_methods
from support.doubles import StandInRouter


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
