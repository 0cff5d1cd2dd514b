"""Shared pytest fixtures and options."""

import pytest

# With CI=true a skip (a missing peer) fails the run: see support/ci_skips.py.
pytest_plugins = ["support.ci_skips"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--proxy", default="kamrouter",
                     help="proxy the e2e tests drive: kamrouter, kamailio, or both comma-separated")
