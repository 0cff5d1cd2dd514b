"""Fixtures for the API-routing modules' own tests (module level, before a whole router)."""
from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from support.doubles import StandInRouter
from support.lab import SipLab



@dataclass
class ModuleHost(StandInRouter):
    """The shared stand-in router on trio's clock (module tests run real sockets), with
    script event hooks a test can set in ``hooks``."""

    clock: Callable[[], float] = trio.current_time
    hooks: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)

    def emit(self, event: str, **data: Any) -> None:
        super().emit(event, **data)
        hook = self.hooks.get(event)
        if hook is not None:
            hook(data)

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


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery for the test's background tasks, cancelled when the test ends."""
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()
