"""The last-resort guard of an input path: a bug must cost one input, never the router.

Each input handler (a SIP datagram or TCP message, a TCP connection, an RPC connection or
datagram, a FIFO document, an evapi connection...) runs its work under ``try: ... except
Exception as exc: guard.failed(source, exc)``, after answering what it still can.
:meth:`InputGuard.failed` counts the failure in the path's statistic (``core:
drops_internal_error_udp`` / ``_tcp`` for SIP, ``rpc:``, ``evapi:``, ``api:
drops_internal_error`` for the others) and logs it with the source: the first time a failure
comes from a given place in the code with its traceback, later ones in one line (so an
attacker who found a bug cannot fill the log with tracebacks).
"""
from __future__ import annotations

import logging
import traceback

from kamrouter.stats import StatsRegistry

#: What a routing-script hook may raise without stopping the router: any error, and also
#: ``sys.exit()`` or a stray KeyboardInterrupt (signals reach the router through trio's
#: signal receiver, never as an exception in a hook). trio's Cancelled is not among them.
HOOK_ERRORS = (Exception, SystemExit, KeyboardInterrupt)

#: SIP input paths with a guard of their own (the transports' protocol names).
SIP_PATHS = ("udp", "tcp")
#: Distinct failure sites remembered per guard (beyond that, every failure is one line).
MAX_SITES = 256


class InputGuard:
    """Counts and logs what escaped the handlers of one input path (e.g. ``rpc``)."""

    def __init__(self, group: str, stats: StatsRegistry, logger: logging.Logger,
                 name: str = "drops_internal_error") -> None:
        self.path = group if name == "drops_internal_error" else f"{group}:{name}"
        self.stat = f"{group}:{name}"
        self.counter = stats.counter(group, name)
        self.log = logger
        self._sites: set[tuple[str, str, int | None]] = set()

    def failed(self, source: object, exc: BaseException) -> None:
        """Record that handling input from ``source`` raised ``exc`` (the input is dropped)."""
        self.counter.value += 1
        site = _site(exc)
        if site not in self._sites and len(self._sites) < MAX_SITES:
            self._sites.add(site)
            self.log.error("%s: internal error on input from %s; input dropped, counted in "
                           "%s", self.path, source, self.stat, exc_info=exc)
        else:
            self.log.error("%s: internal error on input from %s: %s: %s (traceback logged "
                           "before)", self.path, source, type(exc).__name__, exc)


def sip_guards(stats: StatsRegistry, logger: logging.Logger) -> dict[str, InputGuard]:
    """One guard per SIP transport: ``core:drops_internal_error_<proto>``."""
    return {proto: InputGuard("core", stats, logger, f"drops_internal_error_{proto}")
            for proto in SIP_PATHS}


def _site(exc: BaseException) -> tuple[str, str, int | None]:
    """The exception type and the innermost frame it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return (type(exc).__name__, last.filename if last else "", last.lineno if last else None)
