"""Runtime state of one target and the state machine that changes it.

Every state change goes through :func:`request_state`, whatever asked for it: a probe reply
(``Origin.PING``), the routing script (``mark_dst`` / ``mark_addr``) or RPC. The rules,
in the order they are checked:

| current   | requested        | origin       | result                                              |
|-----------|------------------|--------------|-----------------------------------------------------|
| any       | any              | rpc          | exactly the requested bits; counters cleared         |
| disabled  | not disabled     | ping, script | unchanged (only RPC or a reload re-enables)          |
| any       | disabled         | ping, script | disabled                                            |
| inactive  | trying (failure) | ping, script | inactive (probing kept); success counter cleared    |
| other     | trying (failure) | ping, script | failures+1; inactive once failures reach            |
|           |                  |              | ``probing_threshold`` (counter cleared), else trying|
| any       | inactive         | ping, script | inactive                                            |
| inactive  | active (success) | ping         | successes+1; active once they reach                 |
|           |                  |              | ``inactive_threshold``, else stays inactive *and    |
|           |                  |              | keeps probing* (so it is pinged until it recovers)  |
| other     | active           | any          | active; counters cleared                            |

Differences from Kamailio, on purpose: a script's ``t`` counts toward
``probing_threshold`` like a failed probe (Kamailio makes it inactive at once); a target
waiting for more good replies keeps its probing flag in every probing mode (Kamailio mode 0
drops it and the target never recovers, kamailio/kamailio#2100); ``disabled`` is an
operator decision that pings and scripts do not undo.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from kamrouter.modules.dispatcher.flags import (
    DISABLED, INACTIVE, PROBING, STATE_MASK, TRYING, is_usable,
)
from kamrouter.modules.dispatcher.latency import LatencyStats


class Origin(enum.Enum):
    PING = "ping"
    SCRIPT = "script"
    RPC = "rpc"
    RELOAD = "reload"


@dataclass(frozen=True)
class Thresholds:
    #: Consecutive failures that turn a target inactive.
    probing: int = 1
    #: Consecutive good probe replies that turn an inactive target active again.
    inactive: int = 1


class Health:
    """Mutable runtime data of one target; shared by the old and new list across a reload."""

    __slots__ = ("flags", "failures", "successes", "latency", "load", "selected",
                 "last_probe_at", "last_probe_code", "last_probe_reason", "probes_sent",
                 "probes_failed", "retired")

    def __init__(self, flags: int, initial_latency: float = 0.0) -> None:
        self.flags = flags
        self.failures = 0
        self.successes = 0
        self.latency = LatencyStats(initial_latency)
        #: Active calls (algorithm 10).
        self.load = 0
        #: Times it was chosen (first choices, failovers, parallel forks): its growth shows
        #: where traffic goes.
        self.selected = 0
        #: Wall-clock time of the last probe reply, its status and reason.
        self.last_probe_at: float | None = None
        self.last_probe_code = 0
        self.last_probe_reason = ""
        self.probes_sent = 0
        self.probes_failed = 0
        #: Set when a reload or ``dispatcher.remove`` dropped the target: in-flight calls may
        #: still use it, but it is no longer probed and raises no events.
        self.retired = False

    @property
    def usable(self) -> bool:
        return is_usable(self.flags)


def request_state(health: Health, requested: int, origin: Origin,
                  thresholds: Thresholds) -> bool:
    """Apply a requested state (state bits of :mod:`flags`); True when usability flipped."""
    before = health.flags
    options = before & ~STATE_MASK
    current = before & STATE_MASK
    wants_probing = requested & PROBING
    if origin is Origin.RPC or origin is Origin.RELOAD:
        state = requested & STATE_MASK
        health.failures = health.successes = 0
    elif current & DISABLED:
        state = current
    elif requested & DISABLED:
        state = DISABLED
        health.failures = health.successes = 0
    elif requested & TRYING:
        health.successes = 0
        if current & INACTIVE:
            state = INACTIVE | wants_probing | (current & PROBING)
        else:
            health.failures += 1
            if health.failures >= thresholds.probing:
                health.failures = 0
                state = INACTIVE | wants_probing
            else:
                state = TRYING | wants_probing
    elif requested & INACTIVE:
        health.failures = health.successes = 0
        state = INACTIVE | wants_probing
    elif current & INACTIVE and origin is Origin.PING:
        health.successes += 1
        if health.successes >= thresholds.inactive:
            health.successes = 0
            state = wants_probing
        else:
            state = INACTIVE | PROBING
    else:
        health.failures = health.successes = 0
        state = wants_probing
    health.flags = options | state
    return is_usable(before) != is_usable(health.flags)
