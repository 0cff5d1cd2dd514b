"""Certificates for the TLS tests, made once per session by the shipped script."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAKE_CERTS = REPO / "etc" / "tls" / "make-test-certs.sh"


def made_certs(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A CA and its certificates in a new directory, by the shipped script."""
    directory = tmp_path_factory.mktemp(name)
    subprocess.run(["sh", str(MAKE_CERTS), str(directory)], check=True, timeout=120,
                   capture_output=True)
    return directory


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return made_certs(tmp_path_factory, "certs")


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, unrelated CA: certificates it did not sign must be refused."""
    return made_certs(tmp_path_factory, "other-ca")
