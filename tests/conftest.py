"""Shared pytest fixtures."""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--proxy", default="kamrouter",
                     help="proxy the e2e tests drive: kamrouter, kamailio, or both comma-separated")
