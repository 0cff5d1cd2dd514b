"""Destinations, sets and the whole list, and how a new list inherits the old one's state.

A :class:`DispatchList` is never edited in place: reload, ``dispatcher.add`` and
``dispatcher.remove`` build a new one and the dispatcher swaps a single reference, so a
selection in progress sees one consistent list. Runtime state lives in :class:`Health`
objects that a new list *shares* with the old one for every target that stays (same set,
URI and socket), so a call that started before a reload and marks its target in a failure
route updates the target as it is now listed, and probes, counters, latency and call load
carry over.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from kamrouter.modules.dispatcher.health import Health
from kamrouter.modules.dispatcher.listfile import DestinationSpec
from kamrouter.modules.dispatcher.weighted import SmoothWeighted
from kamrouter.stats import Counter


class Destination:
    """One target of one set: its configuration plus its (shared) runtime :class:`Health`."""

    __slots__ = ("spec", "setid", "uri", "priority", "attrs", "address", "health")

    def __init__(self, spec: DestinationSpec, health: Health) -> None:
        self.spec = spec
        self.setid = spec.setid
        self.uri = spec.uri
        self.priority = spec.priority
        self.attrs = spec.attrs
        self.address = spec.address
        self.health = health

    def __repr__(self) -> str:
        return f"<Destination {self.setid} {self.uri} {self.health.flags:#x}>"


@dataclass
class SetCounters:
    """The ``dispatcher:`` statistics of one set (plus the totals they also feed)."""

    selections: Counter
    failovers: Counter
    select_failures: Counter
    probes_sent: Counter
    probes_failed: Counter


class DestinationSet:
    """Targets of one set id, ordered as Kamailio orders them: by priority, highest first,
    and targets of equal priority in *reverse* definition order (Kamailio prepends each
    line it reads). The hash algorithms index this order and the failover list follows it,
    so both pick what Kamailio picks for the same list; ``dispatcher.list`` shows it."""

    __slots__ = ("setid", "targets", "counters", "rr_next", "weighted", "relative")

    def __init__(self, setid: int, targets: list[Destination], counters: SetCounters) -> None:
        self.setid = setid
        self.targets = sorted(reversed(targets), key=lambda d: -d.priority)
        self.counters = counters
        #: Round-robin position (algorithms 4 and 13).
        self.rr_next = 0
        self.weighted = SmoothWeighted()   # algorithm 9
        self.relative = SmoothWeighted()   # algorithm 11


class DispatchList:
    """All sets, by id in ascending order; immutable once built."""

    __slots__ = ("sets", "generation")

    def __init__(self, sets: dict[int, DestinationSet], generation: int) -> None:
        self.sets = dict(sorted(sets.items()))
        self.generation = generation

    def destinations(self) -> Iterator[Destination]:
        for dset in self.sets.values():
            yield from dset.targets

    def specs(self) -> list[DestinationSpec]:
        return [d.spec for d in self.destinations()]

    def find(self, setid: int, uri: str) -> list[Destination]:
        dset = self.sets.get(setid)
        return [d for d in dset.targets if d.uri == uri] if dset else []


def build_list(specs: Iterable[DestinationSpec], previous: DispatchList | None,
               counters_for: Callable[[int], SetCounters],
               on_state_reset: Callable[[Destination, int], None]) -> DispatchList:
    """Build a new list from ``specs``, inheriting runtime state from ``previous``.

    A target that stays keeps its :class:`Health` object. When its configured flags changed
    in the list, the configured state wins (``on_state_reset(dest, old_flags)`` is called so
    the caller can raise events); when they did not, the runtime state carries over. Targets
    that disappear are marked retired. Old round-robin and weight positions carry over per
    set, so a reload does not restart the rotation at the first target.
    """
    inherited: dict[tuple[int, str, str], list[Destination]] = {}
    if previous is not None:
        for kept in previous.destinations():
            inherited.setdefault(kept.spec.key, []).append(kept)
    members: dict[int, list[Destination]] = {}
    resets: list[tuple[Destination, int]] = []
    for spec in specs:
        candidates = inherited.get(spec.key)
        old = candidates.pop(0) if candidates else None
        if old is None:
            dest = Destination(spec, Health(spec.flags, spec.attrs.latency))
        else:
            dest = Destination(spec, old.health)
            if old.spec.flags != spec.flags:
                resets.append((dest, old.health.flags))
                old.health.flags = spec.flags
                old.health.failures = old.health.successes = 0
        members.setdefault(spec.setid, []).append(dest)
    for leftovers in inherited.values():
        for old in leftovers:
            old.health.retired = True
    sets: dict[int, DestinationSet] = {}
    for setid, targets in members.items():
        dset = DestinationSet(setid, targets, counters_for(setid))
        old_set = previous.sets.get(setid) if previous is not None else None
        if old_set is not None:
            dset.rr_next = old_set.rr_next
        sets[setid] = dset
    new_list = DispatchList(sets, previous.generation + 1 if previous is not None else 1)
    for dest, old_flags in resets:
        on_state_reset(dest, old_flags)
    return new_list
