"""The dispatcher of a router with worker processes (``[core] workers = N``) as one
dispatcher: worker 0 alone probes the destinations, and every other worker follows worker
0's destination states.

The state bus brings each probe result and each script's mark at once (:mod:`.bus_link`).
Besides, a follower asks worker 0 for its states (``dispatcher.worker_states``, one small
RPC) every :data:`FOLLOW_INTERVAL` seconds and takes over each one that differs from its
own, so a lost bus message is repaired within about that time. Worker 0 is the authority;
a script's mark in any worker reaches worker 0 too, so the next look keeps it. A
taken-over state raises no dst-up/dst-down event: the worker that decided it raised it
once for the router. Destinations are matched by set, URI and how many entries with both
came before (:class:`DestinationKeys`), so two entries with one URI stay apart.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kamrouter.modules.dispatcher.flags import STATE_MASK

if TYPE_CHECKING:
    from kamrouter.modules.dispatcher.core import Dispatcher
    from kamrouter.modules.dispatcher.model import Destination, DispatchList

#: Seconds between two looks of a follower at worker 0's states.
FOLLOW_INTERVAL = 1.0
#: What worker 0 answers followers with.
STATES_METHOD = "dispatcher.worker_states"

#: (set id, URI, entries with both before it in the list)
Key = tuple[int, str, int]


def state_records(dispatcher: Dispatcher) -> list[list[Any]]:
    """[set id, URI, state bits] of every destination, in list order."""
    return [[dest.setid, dest.uri, dest.health.flags & STATE_MASK]
            for dest in dispatcher.list.destinations()]


def _keyed(entries: Iterable[tuple[int, str, Any]]) -> dict[Key, Any]:
    before: dict[tuple[int, str], int] = {}
    keyed: dict[Key, Any] = {}
    for setid, uri, value in entries:
        count = before.get((setid, uri), 0)
        before[(setid, uri)] = count + 1
        keyed[(setid, uri, count)] = value
    return keyed


class DestinationKeys:
    """Destinations of the current list by :data:`Key` and back (how the workers name
    them to each other), worked out once per list."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._list: DispatchList | None = None
        self._dests: dict[Key, Destination] = {}
        self._keys: dict[int, Key] = {}

    def _current(self) -> None:
        current = self.dispatcher.list
        if current is not self._list:
            self._list = current
            self._dests = _keyed((d.setid, d.uri, d) for d in current.destinations())
            # By runtime data, which a reload keeps: a target of an older list maps too.
            self._keys = {id(d.health): key for key, d in self._dests.items()}

    def key(self, dest: Destination) -> Key | None:
        """None for a target the current list no longer has."""
        self._current()
        return self._keys.get(id(dest.health))

    def dest(self, setid: Any, uri: Any, before: Any) -> Destination | None:
        """None when the list has no such target (a reload on its way)."""
        if not (type(setid) is int and isinstance(uri, str) and type(before) is int):
            raise ValueError(f"not a destination: {[setid, uri, before]!r}"[:200])
        self._current()
        return self._dests.get((setid, uri, before))


def _parse(records: Any) -> list[tuple[int, str, int]]:
    if not isinstance(records, list):
        raise ValueError("expected a list")
    parsed = []
    for record in records:
        if not (isinstance(record, list) and len(record) == 3
                and all(isinstance(v, t) for v, t in zip(record, (int, str, int)))):
            raise ValueError(f"bad destination state {record!r}")
        parsed.append((record[0], record[1], record[2] & STATE_MASK))
    return parsed


class StateFollower:
    """Gives this worker's destinations worker 0's states."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def follow(self, records: Any) -> int:
        """Apply worker 0's ``dispatcher.worker_states`` answer; returns how many states
        changed here. Raises ValueError (and changes nothing) on a malformed answer. A
        destination only one of the two has (an add or reload on its way) is left alone."""
        remote: dict[Key, int] = _keyed(_parse(records))
        local: dict[Key, Destination] = _keyed(
            (dest.setid, dest.uri, dest) for dest in self.dispatcher.list.destinations())
        changed = 0
        for key, state in remote.items():
            dest = local.get(key)
            if dest is not None and dest.health.flags & STATE_MASK != state:
                self.dispatcher.adopt_state(dest, state)
                changed += 1
        return changed
