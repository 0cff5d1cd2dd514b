"""Algorithm 10's call load as one table for all worker processes, through the state bus
(:mod:`kamrouter.modules.bus`, channel ``dispatcher.load``): every assignment, 2xx and end
of a call in one worker (:mod:`.calls`) is applied in the others, so each selection picks
the least loaded target of the router, ``maxload`` holds for the router, and a BYE or
CANCEL that reaches another worker than its INVITE still ends the call's load.

Messages: ``["a", call id, set id, URI, entries with both before it, owner, deadline]``,
``["c", call id, deadline]`` and ``["r", call id, owner or null]``; deadlines are on the
machine's monotonic clock. A call costs three messages (its selection, its 2xx and its
BYE), about as many as a script's htable writes (README, "Worker processes"). Conflicts: the
later message wins per call, and a release with an owner ends only that selection's count
(an INVITE re-sent after a challenge may be counted by another worker meanwhile).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.dispatcher.workers import DestinationKeys

if TYPE_CHECKING:
    from kamrouter.modules.dispatcher.core import Dispatcher

CHANNEL = "dispatcher.load"
#: Longest Call-ID a message may carry (what a UDP datagram can hold).
MAX_CALL_ID = 65535


class CallLoadBus:
    def __init__(self, bus: StateBus, dispatcher: Dispatcher) -> None:
        self.calls = dispatcher.calls
        self.calls.worker = bus.index
        self._keys = DestinationKeys(dispatcher)
        self._bus = bus
        self.calls.on_change = self._publish
        bus.register(CHANNEL, self)

    def _publish(self, change: tuple[Any, ...]) -> None:
        kind, call_id, *rest = change
        if kind == "assign":
            dest, owner, deadline = rest
            key = self._keys.key(dest)
            if key is None:  # a target a reload dropped: the others do not have it
                return
            self._bus.publish(CHANNEL, ["a", call_id, *key, owner, deadline])
        else:
            self._bus.publish(CHANNEL, [kind[0], call_id, *rest])

    def apply(self, payload: Any) -> None:
        kind, call_id, *rest = payload
        if not isinstance(call_id, str) or len(call_id) > MAX_CALL_ID:
            raise ValueError(f"not a Call-ID: {call_id!r}"[:200])
        if kind == "a":
            setid, uri, before, owner, deadline = rest
            dest = self._keys.dest(setid, uri, before)
            if dest is not None:
                self.calls.apply_assign(call_id, dest, _owner(owner), float(deadline))
        elif kind == "c":
            (deadline,) = rest
            self.calls.apply_confirm(call_id, float(deadline))
        elif kind == "r":
            (owner,) = rest
            self.calls.apply_release(call_id, None if owner is None else _owner(owner))
        else:
            raise ValueError(f"not a call load change: {payload!r}"[:200])

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
            self.apply(["a", call_id, *rest])


def _owner(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"not an owner: {value!r}"[:200])
    return value
