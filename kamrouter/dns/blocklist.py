"""The destination blocklist (Kamailio ``dst_blocklist``): destinations that failed recently
are skipped when a branch picks its target, until their entry expires.

Entries expire lazily (checked when read, dropped when the table is full): no timer and no
task. The table is bounded, because the destinations come from the network.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kamrouter.net import Endpoint


@dataclass(slots=True)
class Entry:
    expires: float
    reason: str


class Blocklist:
    def __init__(self, clock: Callable[[], float], expire: float = 60.0,
                 max_entries: int = 4096, enabled: bool = True) -> None:
        self.clock = clock
        self.expire = expire
        self.max_entries = max_entries
        self.enabled = enabled
        self._entries: dict[Endpoint, Entry] = {}
        #: Counters for the stats: destinations added, sends skipped because blocked.
        self.added = 0
        self.skipped = 0
        #: Told of each destination added here, with its seconds and reason (the state bus
        #: takes it to the other worker processes).
        self.on_added: Callable[[Endpoint, float, str], None] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, dest: Endpoint, reason: str, expire: float | None = None) -> None:
        if not self.enabled:
            return
        seconds = self.expire if expire is None else expire
        self.apply(dest, reason, seconds)
        if self.on_added is not None:
            self.on_added(dest, seconds, reason)

    def apply(self, dest: Endpoint, reason: str, seconds: float) -> None:
        """Block ``dest`` for ``seconds`` (as another worker decided: told to nobody)."""
        if not self.enabled:
            return
        entries = self._entries
        if dest not in entries and len(entries) >= self.max_entries:
            self._drop_expired()
            if len(entries) >= self.max_entries:
                del entries[next(iter(entries))]  # the oldest entry
        entries.pop(dest, None)  # re-insert: the dict's order is the age order
        entries[dest] = Entry(self.clock() + seconds, reason)
        self.added += 1

    def is_blocked(self, dest: Endpoint) -> bool:
        entry = self._entries.get(dest)
        if entry is None:
            return False
        if entry.expires <= self.clock():
            del self._entries[dest]
            return False
        return True

    def usable(self, targets: list[Endpoint]) -> list[Endpoint]:
        """``targets`` without the blocked ones; all of them when every one is blocked (a
        dead name still gets tried, as Kamailio does, rather than failing without a send)."""
        if not self._entries:
            return targets
        kept = [t for t in targets if not self.is_blocked(t)]
        self.skipped += len(targets) - len(kept)
        return kept or targets

    def remove(self, dest: Endpoint) -> bool:
        return self._entries.pop(dest, None) is not None

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count

    def view(self) -> list[tuple[Endpoint, float, str]]:
        """(destination, seconds left, reason) of every live entry."""
        self._drop_expired()
        now = self.clock()
        return [(dest, entry.expires - now, entry.reason) for dest, entry in self._entries.items()]

    def _drop_expired(self) -> None:
        now = self.clock()
        for dest in [d for d, e in self._entries.items() if e.expires <= now]:
            del self._entries[dest]
