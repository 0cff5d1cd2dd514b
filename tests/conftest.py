"""Shared pytest fixtures and options."""

import pytest

# With CI=true a skip (a missing peer) fails the run: see support/ci_skips.py.
# support.loopback_only: this process's sockets reach 127.0.0.1 / ::1 only.
pytest_plugins = ["support.ci_skips", "support.loopback_only", "support.redis"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--proxy", default="kamrouter",
                     help="proxy the e2e tests drive: kamrouter, kamailio, or both comma-separated")
