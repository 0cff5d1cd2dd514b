"""Timing of the routing script's synchronous hooks: one that holds the event loop too long.

Hooks run in the receive loop, so a hook that blocks (a synchronous HTTP call, a big loop)
stalls every call. :meth:`HookTimer.call` reads the clock before and after the hook; one
over the threshold (``[routing] slow_hook_ms``) is counted (``core:script_slow_hooks``) and
logged with its name and time, at most once per :data:`LOG_INTERVAL` per hook. Only the
synchronous part is timed: the steps of an ``async def`` hook after its first ``await`` run
in a task of their own.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kamrouter.stats import Counter

log = logging.getLogger("kamrouter.script")

#: Seconds between two log lines about the same slow hook (each occurrence is counted).
LOG_INTERVAL = 10.0


class HookTimer:
    def __init__(self, threshold_ms: int, counter: Counter,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.threshold = threshold_ms / 1000
        self.counter = counter
        self.clock = clock
        #: Hook name → (clock of its last log line, slow calls not logged since).
        self._logged: dict[str, tuple[float, int]] = {}

    def call(self, hook: Callable[..., Any], *args: Any) -> Any:
        """``hook(*args)``, timed when a threshold is set."""
        if not self.threshold:
            return hook(*args)
        start = self.clock()
        try:
            return hook(*args)
        finally:
            elapsed = self.clock() - start
            if elapsed > self.threshold:
                self._slow(hook, elapsed)

    def _slow(self, hook: Callable[..., Any], elapsed: float) -> None:
        self.counter.value += 1
        name = getattr(hook, "__qualname__", None) or repr(hook)
        now = self.clock()
        last, unlogged = self._logged.get(name, (None, 0))
        if last is not None and now - last < LOG_INTERVAL:
            self._logged[name] = (last, unlogged + 1)
            return
        self._logged[name] = (now, 0)
        more = f"; {unlogged} more slow calls since the last report" if unlogged else ""
        log.warning("routing script: %s blocked the event loop for %.0f ms (slow_hook_ms = "
                    "%.0f): every call waits meanwhile%s", name, elapsed * 1000,
                    self.threshold * 1000, more)
