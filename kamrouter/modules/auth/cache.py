"""A bounded cache of the HA1 values the routing API answered, per (username, realm), sans-IO
(time is the ``now`` each call is given).

Found users and unknown users are kept apart, each bounded and evicting its oldest entry:
a flood of random usernames fills only the smaller negative part and never pushes out the
HA1 of a real user. With worker processes the state bus gives every worker the entries
another one stored (:mod:`.cache_bus`). An expired found entry is kept (until evicted) so that it can still
serve as a stale value while the API is failing, when the operator allows it.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from kamrouter.modules.auth.subscribers import Subscriber

Key = tuple[str, str]


class Entry(NamedTuple):
    #: None: the API said the user does not exist.
    subscriber: Subscriber | None
    expires: float


class Ha1Cache:
    def __init__(self, ttl: float, negative_ttl: float, size: int, negative_size: int) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._sizes = (size, negative_size)
        self._found: OrderedDict[Key, Entry] = OrderedDict()
        self._unknown: OrderedDict[Key, Entry] = OrderedDict()

    def get(self, key: Key, now: float) -> Entry | None:
        """The live entry of ``key`` (found or unknown), or None when it must be asked."""
        entry = self._found.get(key) or self._unknown.get(key)
        return entry if entry is not None and now < entry.expires else None

    def stale(self, key: Key, now: float, allowance: float) -> Subscriber | None:
        """A found entry that expired less than ``allowance`` seconds ago."""
        entry = self._found.get(key)
        if entry is None or entry.subscriber is None or now >= entry.expires + allowance:
            return None
        return entry.subscriber

    def put(self, key: Key, subscriber: Subscriber | None, now: float) -> Entry:
        """Remember the API's answer for ``key`` (None: unknown user); the entry made."""
        entry = Entry(subscriber, now + (self.ttl if subscriber else self.negative_ttl))
        self.store(key, entry)
        return entry

    def store(self, key: Key, entry: Entry) -> None:
        """Keep ``entry`` (another worker's, with its expiry) for ``key``."""
        self._found.pop(key, None)
        self._unknown.pop(key, None)
        table, size = ((self._found, self._sizes[0]) if entry.subscriber is not None
                       else (self._unknown, self._sizes[1]))
        if size <= 0:
            return
        table[key] = entry
        while len(table) > size:
            table.popitem(last=False)

    def flush(self, key: Key | None = None) -> int:
        """Forget ``key`` (or everything); the number of entries removed."""
        if key is None:
            count = len(self._found) + len(self._unknown)
            self._found.clear()
            self._unknown.clear()
            return count
        return (self._found.pop(key, None) is not None) + (self._unknown.pop(key, None)
                                                            is not None)

    def entries(self) -> list[tuple[Key, Entry]]:
        return [*self._found.items(), *self._unknown.items()]

    def __len__(self) -> int:
        return len(self._found) + len(self._unknown)
