"""Last-resort guards of the input paths: an exception that escaped a handler (a bug) is
counted per path, logged with the source address, and the router goes on.

The counters are ``core:drops_internal_error_<path>`` (``udp``, ``tcp``): messages or
connections whose handling was abandoned on an internal error. The traceback of a code site
is logged the first time it fails; later failures there are one line each, so hostile input
that keeps hitting one bug cannot flood the log with tracebacks.
"""
from __future__ import annotations

import logging
import traceback

from kamrouter.stats import Counter, StatsRegistry

log = logging.getLogger("kamrouter.guard")

#: What a routing-script hook may raise without stopping the router: any error, and also
#: ``sys.exit()`` or a stray KeyboardInterrupt (signals reach the router through trio's
#: signal receiver, never as an exception in a hook). trio's Cancelled is not among them.
HOOK_ERRORS = (Exception, SystemExit, KeyboardInterrupt)

#: Input paths with a guard (the transports' protocol names).
PATHS = ("udp", "tcp")
#: Distinct failing code sites remembered; beyond it, every failure logs its traceback.
_MAX_SITES = 1024
_sites: set[tuple[str, str, int]] = set()


class InputGuard:
    """Counts and logs exceptions that escaped the handler of one input path."""

    def __init__(self, stats: StatsRegistry) -> None:
        self.counters: dict[str, Counter] = {
            path: stats.counter("core", f"drops_internal_error_{path}") for path in PATHS}

    def caught(self, path: str, source: object, exc: BaseException) -> None:
        counter = self.counters.get(path)
        if counter is not None:
            counter.value += 1
        site = _site(exc)
        if site in _sites:
            log.error("internal error handling %s input from %s: %s: %s (traceback logged "
                      "before)", path, source, type(exc).__name__, exc)
            return
        if len(_sites) < _MAX_SITES:
            _sites.add(site)
        log.error("internal error handling %s input from %s; the input is dropped and the "
                  "router goes on", path, source, exc_info=exc)


def _site(exc: BaseException) -> tuple[str, str, int]:
    """Exception type and innermost frame: where the bug is."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return type(exc).__name__, last.filename if last else "", (last.lineno or 0) if last else 0
