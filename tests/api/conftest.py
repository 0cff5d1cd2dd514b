"""Fixtures for the API-routing modules' own tests (module level, before a whole router)."""
from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from support.lab import SipLab

from kamrouter.net import OwnEndpoints
from kamrouter.rpc.registry import MethodRegistry
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler


class ModuleHost:
    """The router services a module sees (base.RouterServices), with recorded events."""

    def __init__(self) -> None:
        self.stats = StatsRegistry()
        self.rpc = MethodRegistry()
        self.scheduler = Scheduler(trio.current_time)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.hooks: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.modules: dict[str, Any] = {}
        self.own_endpoints = OwnEndpoints()

    def clock(self) -> float:
        return trio.current_time()

    def emit(self, event: str, **data: Any) -> None:
        self.events.append((event, data))
        hook = self.hooks.get(event)
        if hook is not None:
            hook(data)

    def module(self, name: str) -> Any:
        return self.modules[name]

    def stat(self, selector: str) -> int | float:
        (stat,) = self.stats.select(selector)
        return stat.value


@pytest.fixture
def host() -> ModuleHost:
    return ModuleHost()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[SipLab]:
    """sipp peers and a kamrouter (API routing has no Kamailio twin config)."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; `make test` installs it)")
    sip_lab = SipLab(tmp_path, "kamrouter")
    yield sip_lab
    sip_lab.close()


@pytest.fixture
def controllers() -> Iterator[list[Any]]:
    """Controller processes a test starts; stopped after it."""
    started: list[Any] = []
    yield started
    for controller in started:
        controller.stop()
