"""Destination states shared between worker processes through the state bus
(:mod:`kamrouter.modules.bus`, channel ``dispatcher``): a script's ``mark_dst``/``mark_addr``
in any worker, and each probe result of worker 0 (the only one that probes), set the
destination's state in every worker at once, as ``[set id, URI, entries with both before
it, state bits]``; a probe result adds ``[last probe time, status, reason, probes sent,
probes failed, latency]``, so every worker's algorithm 13 uses the measured latency and
its ``dispatcher.list`` shows it. Worker 0 gets the marks too, so its probes and the
followers' looks at its states (:mod:`.workers`, which repair a lost message within a
second) keep them. The dst-up/dst-down event runs once, in the worker that decided. RPC
state changes do not need the bus: the supervisor runs ``dispatcher.set_state`` in every
worker.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.dispatcher.flags import STATE_MASK
from kamrouter.modules.dispatcher.health import Origin
from kamrouter.modules.dispatcher.workers import DestinationKeys, StateFollower, state_records

if TYPE_CHECKING:
    from kamrouter.modules.dispatcher.core import Dispatcher
    from kamrouter.modules.dispatcher.model import Destination

CHANNEL = "dispatcher"


class DispatcherBus:
    def __init__(self, bus: StateBus, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._keys = DestinationKeys(dispatcher)
        self._follower = StateFollower(dispatcher)
        self._bus = bus
        dispatcher.on_state_change = self._publish
        bus.register(CHANNEL, self)

    def _publish(self, dest: Destination, origin: Origin) -> None:
        key = self._keys.key(dest)
        if key is None:
            return
        health = dest.health
        record: list[Any] = [*key, health.flags & STATE_MASK]
        if origin is Origin.PING:
            record.append([health.last_probe_at, health.last_probe_code,
                           health.last_probe_reason, health.probes_sent, health.probes_failed,
                           health.latency.snapshot()])
        self._bus.publish(CHANNEL, record)

    def apply(self, payload: Any) -> None:
        setid, uri, before, state, *probe = payload
        if type(state) is not int or len(probe) > 1:
            raise ValueError(f"not a destination state: {payload!r}"[:200])
        dest = self._keys.dest(setid, uri, before)
        if dest is None:
            return
        if probe:
            last_at, code, reason, sent, failed, latency = probe[0]
            figures = (None if last_at is None else float(last_at), int(code), str(reason),
                       int(sent), int(failed))  # all read before any is set
            health = dest.health
            health.latency.restore(latency)
            (health.last_probe_at, health.last_probe_code, health.last_probe_reason,
             health.probes_sent, health.probes_failed) = figures
        self.dispatcher.adopt_state(dest, state & STATE_MASK)

    def dump(self) -> list[list[Any]]:
        return state_records(self.dispatcher)

    def load(self, data: Any) -> None:
        self._follower.follow(data)
