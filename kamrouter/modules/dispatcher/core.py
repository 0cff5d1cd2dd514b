"""The dispatcher's state and every operation that changes it, free of I/O.

The script API, the RPC methods and the prober all act through one :class:`Dispatcher`;
it owns the current :class:`DispatchList` (swapped whole on reload/add/remove), the call
load table, the ``dispatcher:`` statistics and the dst-up / dst-down events.

Events fire whenever a target turns usable or unusable, whoever caused it; their data says
who (``origin``: ping, script, rpc, reload) besides Kamailio's code/reason/uri/setid/flags.
Kamailio raises none for RPC changes and none for the initial state; here RPC changes do,
and ``initial_events = true`` announces every target that appears (startup, reload, add).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kamrouter.modules.dispatcher.algorithms import SelectOptions
from kamrouter.modules.dispatcher.calls import CallLoad
from kamrouter.modules.dispatcher.config import DispatcherConfig
from kamrouter.modules.dispatcher.flags import (
    NODNSARES, STATE_MASK, is_usable, state_letters, state_name,
)
from kamrouter.modules.dispatcher.health import Origin, Thresholds, request_state
from kamrouter.modules.dispatcher.keys import HashKeyTemplate
from kamrouter.modules.dispatcher.listfile import DestinationSpec, read_list, specs_from_tables
from kamrouter.modules.dispatcher.model import (
    Destination, DispatchList, SetCounters, build_list,
)
from kamrouter.stats import StatsRegistry

EventSink = Callable[[str, dict[str, Any]], None]
DST_UP = "dispatcher:dst-up"
DST_DOWN = "dispatcher:dst-down"
#: Decisions a worker makes alone (RPC changes run in every worker, reloads read the list).
_SHARED = frozenset({Origin.SCRIPT, Origin.PING})
_COUNTER_NAMES = ("selections", "failovers", "select_failures", "probes_sent", "probes_failed")


class Dispatcher:
    def __init__(self, config: DispatcherConfig, stats: StatsRegistry,
                 clock: Callable[[], float], emit: EventSink,
                 list_path: Path | None = None, rng: random.Random | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock
        self.rng = rng or random.Random()
        self.list_path = list_path
        self.thresholds = Thresholds(config.probing_threshold, config.inactive_threshold)
        self.options = SelectOptions(
            use_default=config.use_default,
            spread_dead_share=config.dead_target_share == "spread",
            hash_user_only=config.hash_user_only,
            hash_key=HashKeyTemplate(config.hash_key) if config.hash_key else None,
        )
        self.calls = CallLoad(config.call_load_expire, config.call_load_init_expire)
        #: ``dispatcher.ping_active``: probing rounds send nothing while False.
        self.ping_active = True
        self.list = DispatchList({}, 0)
        #: Called with a destination a script marked or a probe reply changed, and by whom
        #: (the state bus shares it with the other worker processes).
        self.on_state_change: Callable[[Destination, Origin], None] | None = None
        #: Host name -> IP addresses, filled by the module's resolver at load time.
        self.resolved: dict[str, frozenset[str]] = {}
        self._emit = emit
        self._stats = stats
        self._static_specs = specs_from_tables(config.destination, "dispatcher.destination")
        self._set_counters: dict[int, SetCounters] = {}
        for name in _COUNTER_NAMES:  # totals of counters: each worker's own
            stats.gauge("dispatcher", name, self._total(name), per_process=True)
        stats.gauge("dispatcher", "active_targets",
                    lambda: sum(d.health.usable for d in self.list.destinations()))
        stats.gauge("dispatcher", "inactive_targets",
                    lambda: sum(not d.health.usable for d in self.list.destinations()))
        # Every worker holds the router's call load (the state bus): taken from worker 0.
        stats.gauge("dispatcher", "active_calls", lambda: len(self.calls))

    # -- statistics -------------------------------------------------------------------------

    def _total(self, name: str) -> Callable[[], int]:
        return lambda: sum(getattr(c, name).value for c in self._set_counters.values())

    def counters_for(self, setid: int) -> SetCounters:
        counters = self._set_counters.get(setid)
        if counters is None:
            counters = SetCounters(*(self._stats.counter("dispatcher", f"set{setid}_{name}")
                                     for name in _COUNTER_NAMES))
            self._set_counters[setid] = counters
        return counters

    # -- the list ---------------------------------------------------------------------------

    def read_sources(self) -> list[DestinationSpec]:
        """TOML destinations plus the list file; raises ListError naming every bad line."""
        file_specs = read_list(self.list_path) if self.list_path is not None else []
        return [*self._static_specs, *file_specs]

    def replace_list(self, specs: Iterable[DestinationSpec], origin: Origin = Origin.RELOAD) -> None:
        """Build a list from ``specs`` (inheriting state) and make it the current one."""
        previous = self.list
        known = {id(d.health) for d in previous.destinations()}
        new_list = build_list(
            specs, previous, self.counters_for,
            lambda dest, old_flags: self._after_change(dest, old_flags, origin, 0, ""))
        self.list = new_list
        if self.config.initial_events:
            for dest in new_list.destinations():
                if id(dest.health) not in known:
                    self._notify(DST_UP if dest.health.usable else DST_DOWN, dest, origin, 0, "")

    def reload(self) -> None:
        """Read the sources and swap the list (blocking: the module's RPC reload reads the
        file in a worker thread instead)."""
        self.replace_list(self.read_sources())

    def add(self, spec: DestinationSpec) -> None:
        self.replace_list([*self.list.specs(), spec], Origin.RPC)

    def remove(self, setid: int, uri: str) -> int:
        """Drop every target of ``setid`` with this URI; returns how many."""
        specs = self.list.specs()
        kept = [s for s in specs if not (s.setid == setid and s.uri == uri)]
        if len(kept) != len(specs):
            self.replace_list(kept, Origin.RPC)
        return len(specs) - len(kept)

    def addresses_of(self, dest: Destination) -> tuple[str, ...] | frozenset[str]:
        """IP addresses a target is reached at (for ``is_from_list``): the literal, or what
        :meth:`set_resolved` recorded for its host name; none with NODNSARES."""
        if dest.health.flags & NODNSARES:
            return ()
        address = dest.address
        if address.ip is not None:
            return (address.ip,)
        return self.resolved.get(address.host_ip.lower(), ())

    def set_resolved(self, host: str, addresses: frozenset[str]) -> None:
        self.resolved[host.lower()] = addresses

    # -- state ------------------------------------------------------------------------------

    def change_state(self, dest: Destination, requested: int, origin: Origin,
                     code: int = 0, reason: str = "") -> None:
        old_flags = dest.health.flags
        request_state(dest.health, requested, origin, self.thresholds)
        self._after_change(dest, old_flags, origin, code, reason)
        if origin in _SHARED and self.on_state_change is not None:
            self.on_state_change(dest, origin)

    def adopt_state(self, dest: Destination, state: int) -> None:
        """Give ``dest`` the state bits another worker process decided (no thresholds; no
        event: that worker raised it)."""
        health = dest.health
        health.flags = (health.flags & ~STATE_MASK) | (state & STATE_MASK)
        health.failures = health.successes = 0

    def _after_change(self, dest: Destination, old_flags: int, origin: Origin,
                      code: int, reason: str) -> None:
        now_usable = dest.health.usable
        if is_usable(old_flags) != now_usable and not dest.health.retired:
            self._notify(DST_UP if now_usable else DST_DOWN, dest, origin, code, reason)

    def _notify(self, event: str, dest: Destination, origin: Origin, code: int,
                reason: str) -> None:
        self._emit(event, {
            "setid": dest.setid, "uri": dest.uri, "duid": dest.attrs.duid,
            "flags": state_letters(dest.health.flags), "state": state_name(dest.health.flags),
            "code": code, "reason": reason, "origin": origin.value,
        })
