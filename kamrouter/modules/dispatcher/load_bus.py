"""Algorithm 10's call load as one table for all worker processes, through the state bus
(:mod:`kamrouter.modules.bus`, channel ``dispatcher.load``): every assignment, 2xx and end
of a call in one worker (:mod:`.calls`) is applied in the others, so each selection picks
the least loaded target of the router, ``maxload`` holds for the router, and a BYE or
CANCEL that reaches another worker than its INVITE still ends the call's load.

Changes: ``["a", call id, set id, URI, entries with both before it, owner, deadline]``,
``["c", call id, deadline]`` and ``["r", call id, owner or null]``; deadlines are on the
machine's monotonic clock. A call makes three (its selection, its 2xx and its BYE). A
change goes at once, unless the worker sent one less than :data:`FLUSH_INTERVAL` seconds
ago: then it waits for the end of that interval with the ones that follow, a list of them
in one message. So a busy worker wakes each other one up at most once per interval, rather
than three times per call (each wake-up costs more CPU than the change), and another
worker's selection may not see the calls of the last interval (measured: README, "Worker
processes"). Conflicts: the later change wins per
call, and a release with an owner ends only that selection's count (an INVITE re-sent after
a challenge may be counted by another worker meanwhile).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.dispatcher.workers import DestinationKeys
from kamrouter.timers import Scheduler, Timer

if TYPE_CHECKING:
    from kamrouter.modules.dispatcher.core import Dispatcher

CHANNEL = "dispatcher.load"
#: Longest Call-ID a message may carry (what a UDP datagram can hold).
MAX_CALL_ID = 65535
#: Seconds between two messages of one worker at least.
FLUSH_INTERVAL = 0.02
#: Bytes of changes per message at most (a bus datagram holds 64 KB).
MESSAGE_BYTES = 32768
_CHANGE_BYTES = 80  # a change without its Call-ID and URI, roughly, as JSON


class CallLoadBus:
    def __init__(self, bus: StateBus, dispatcher: Dispatcher, scheduler: Scheduler) -> None:
        self.calls = dispatcher.calls
        self.calls.worker = bus.index
        self._keys = DestinationKeys(dispatcher)
        self._bus = bus
        self._scheduler = scheduler
        self._pending: list[list[Any]] = []
        self._pending_bytes = 0
        self._timer: Timer | None = None
        self._last_flush = -math.inf
        self.calls.on_change = self._queue
        bus.register(CHANNEL, self)

    def _queue(self, change: tuple[Any, ...]) -> None:
        kind, call_id, *rest = change
        if kind == "assign":
            dest, owner, deadline = rest
            key = self._keys.key(dest)
            if key is None:  # a target a reload dropped: the others do not have it
                return
            record = ["a", call_id, *key, owner, deadline]
            size = len(call_id) + len(key[1]) + _CHANGE_BYTES
        else:
            record = [kind[0], call_id, *rest]
            size = len(call_id) + _CHANGE_BYTES
        if self._pending_bytes + size > MESSAGE_BYTES:
            self.flush()
        self._pending.append(record)
        self._pending_bytes += size
        if self._timer is None:
            wait = self._last_flush + FLUSH_INTERVAL - self._scheduler.clock()
            if wait <= 0:
                self.flush()
            else:
                self._timer = self._scheduler.call_later(wait, self.flush)

    def flush(self) -> None:
        """Send the changes queued since the last flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            self._bus.publish(CHANNEL, self._pending)
            self._pending, self._pending_bytes = [], 0
            self._last_flush = self._scheduler.clock()

    def apply(self, payload: Any) -> None:
        if not isinstance(payload, list):
            raise ValueError(f"not call load changes: {payload!r}"[:200])
        for change in payload:
            self._apply(change)

    def _apply(self, change: Any) -> None:
        kind, call_id, *rest = change
        if not isinstance(call_id, str) or len(call_id) > MAX_CALL_ID:
            raise ValueError(f"not a Call-ID: {call_id!r}"[:200])
        if kind == "a":
            setid, uri, before, owner, deadline = rest
            dest = self._keys.dest(setid, uri, before)
            if dest is not None:
                self.calls.apply_assign(call_id, dest, _owner(owner), _deadline(deadline))
        elif kind == "c":
            (deadline,) = rest
            self.calls.apply_confirm(call_id, _deadline(deadline))
        elif kind == "r":
            (owner,) = rest
            self.calls.apply_release(call_id, None if owner is None else _owner(owner))
        else:
            raise ValueError(f"not a call load change: {change!r}"[:200])

    def dump(self) -> list[list[Any]]:
        dump = []
        for call_id, dest, owner, deadline in self.calls.items():
            key = self._keys.key(dest)
            if key is not None:
                dump.append([call_id, *key, owner, deadline])
        return dump

    def load(self, data: Any) -> None:
        self.calls.clear()
        for call_id, *rest in data:
            self._apply(["a", call_id, *rest])


def _owner(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"not an owner: {value!r}"[:200])
    return value


def _deadline(value: Any) -> float:
    """A call's expiry from another worker: a finite number (NaN or infinity would never
    expire, holding the load for good)."""
    deadline = float(value)
    if not math.isfinite(deadline):
        raise ValueError(f"not a deadline: {value!r}"[:200])
    return deadline
