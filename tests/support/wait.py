"""Bounded waits for what another process or task does meanwhile.

Every wait in the tests goes through these, so a regression fails with what was awaited
instead of hanging, and the timeouts are generous: CI shares two cores with sipp, Redis and
the router, so they bound a failure, never the speed of a success (no timing assertions).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")

#: Default bound of a wait, seconds: far above what any wait takes on an idle machine.
TIMEOUT = 20.0


class WaitTimeout(AssertionError):
    """A condition did not hold in time; the message says what was awaited."""


def wait_until(predicate: Callable[[], T], what: str = "", *, timeout: float = TIMEOUT,
               interval: float = 0.02, detail: Callable[[], str] | None = None) -> T:
    """Poll ``predicate`` until it returns something true and return that; raise
    :class:`WaitTimeout` naming ``what`` (and ``detail()``, e.g. a log tail) after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise WaitTimeout(_message(what or repr(predicate), timeout, detail))
        time.sleep(interval)


async def await_until(predicate: Callable[[], T], what: str = "", *,
                      timeout: float = TIMEOUT, interval: float = 0.005,
                      detail: Callable[[], str] | None = None) -> T:
    """:func:`wait_until` for trio tests: sleeps between polls let the other tasks run."""
    with trio.move_on_after(timeout):
        while True:
            result = predicate()
            if result:
                return result
            await trio.sleep(interval)
    raise WaitTimeout(_message(what or repr(predicate), timeout, detail))


def _message(what: str, timeout: float, detail: Callable[[], str] | None) -> str:
    text = f"gave up after {timeout:g} s waiting for {what}"
    return f"{text}\n{detail()}" if detail is not None else text
