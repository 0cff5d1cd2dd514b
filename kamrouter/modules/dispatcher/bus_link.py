"""A script's marks shared between worker processes through the state bus
(:mod:`kamrouter.modules.bus`, channel ``dispatcher``): ``mark_dst``/``mark_addr`` in any
worker sets the destination's state in every worker, as ``[set id, URI, state bits]`` plus
how many entries with both come before it. Worker 0 gets it too, so its probes and the
other workers' looks at its states (:mod:`.workers`) keep the mark instead of undoing it.
The dst-up/dst-down event runs once, in the worker whose script marked. Probe results and
RPC state changes do not need the bus: worker 0 probes, and the supervisor runs
``dispatcher.set_state`` in every worker.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.dispatcher.flags import STATE_MASK
from kamrouter.modules.dispatcher.workers import StateFollower, state_records

if TYPE_CHECKING:
    from kamrouter.modules.dispatcher.core import Dispatcher
    from kamrouter.modules.dispatcher.model import Destination

CHANNEL = "dispatcher"


class DispatcherBus:
    def __init__(self, bus: StateBus, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._follower = StateFollower(dispatcher)
        dispatcher.on_script_mark = lambda dest: bus.publish(CHANNEL, self._record(dest))
        bus.register(CHANNEL, self)

    def _record(self, marked: Destination) -> list[Any]:
        before = 0
        for dest in self.dispatcher.list.destinations():
            if dest is marked:
                break
            before += dest.setid == marked.setid and dest.uri == marked.uri
        return [marked.setid, marked.uri, before, marked.health.flags & STATE_MASK]

    def apply(self, payload: Any) -> None:
        setid, uri, before, state = payload
        if not (type(setid) is int and isinstance(uri, str) and type(before) is int
                and type(state) is int):
            raise ValueError(f"not a destination state: {payload!r}"[:200])
        matching = [dest for dest in self.dispatcher.list.destinations()
                    if dest.setid == setid and dest.uri == uri]
        if 0 <= before < len(matching):  # not there (yet): a reload on its way
            self.dispatcher.adopt_state(matching[before], state & STATE_MASK)

    def dump(self) -> list[list[Any]]:
        return state_records(self.dispatcher)

    def load(self, data: Any) -> None:
        self._follower.follow(data)
