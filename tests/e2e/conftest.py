"""End-to-end fixtures: every test taking ``lab`` runs once per proxy named by --proxy."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.lab import PROXY_KINDS, SipLab
from support.proxy import KAMAILIO


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "workers_too: with --proxy kamrouter, also run the test "
                            "against kamrouter with two worker processes (kamrouter-workers)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "proxy_kind" in metafunc.fixturenames:
        kinds = [kind.strip() for kind in metafunc.config.getoption("--proxy").split(",")]
        unknown = [kind for kind in kinds if kind not in PROXY_KINDS]
        if unknown:
            raise pytest.UsageError(f"--proxy: unknown {unknown}; choose from {PROXY_KINDS}")
        if ("kamrouter" in kinds and "kamrouter-workers" not in kinds
                and metafunc.definition.get_closest_marker("workers_too")):
            kinds.append("kamrouter-workers")
        metafunc.parametrize("proxy_kind", kinds)


@pytest.fixture
def lab(proxy_kind: str, tmp_path: Path) -> Iterator[SipLab]:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; `make test` installs it)")
    if proxy_kind == "kamailio" and not Path(KAMAILIO).exists():
        pytest.skip(f"--proxy=kamailio needs {KAMAILIO}")
    sip_lab = SipLab(tmp_path, proxy_kind)
    yield sip_lab
    sip_lab.close()
