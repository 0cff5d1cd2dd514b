"""pytest plugin: with ``CI=true`` a skipped test fails instead.

Tests skip when a peer they drive is missing (sipp, redis-server, kamailio, tmux, openssl,
the reference kamcli, the shared conformance messages). On a developer's machine that is a
convenience; in CI (``.ci/run`` runs ``make test`` with ``CI=true``) it would be a green run
that did not test what it claims, so there every skip is reported as a failure, with its
reason. ``make test`` installs the Debian peers (the Makefile's ``TEST_DEBS``).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not (in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped, which fails under CI=true (a peer the suite needs is "
                       f"missing; `make test` installs the Debian ones): {reason}")
