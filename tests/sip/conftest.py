"""Locating the shared conformance messages (<repo root>/../shared, never copied in)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance" / "rfc4475"


def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance messages not found at {CONFORMANCE}")
    return CONFORMANCE
