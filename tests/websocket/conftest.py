"""Certificates for the WSS tests, made by the TLS tests' helper."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.tls.conftest import made_certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return made_certs(tmp_path_factory, "ws-certs")
