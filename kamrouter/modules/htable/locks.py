"""Per-key locks for read-modify-write across awaits (Kamailio's sht_lock/sht_unlock).

Plain reads and writes need no lock: they are synchronous, so nothing runs between them.
A lock matters when a script awaits between reading and writing. Locks are re-entrant per
task (as Kamailio's are per process) and exist only while someone holds or waits for them.
On a Redis-backed table the lock is local to this node; ``inc``/``dec`` are atomic in Redis.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

import trio


class _Entry:
    __slots__ = ("lock", "owner", "depth", "users")

    def __init__(self) -> None:
        self.lock = trio.Lock()
        self.owner: object = None
        self.depth = 0
        self.users = 0


class KeyLocks:
    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        task = trio.lowlevel.current_task()
        entry = self._entries.get(key)
        if entry is not None and entry.owner is task:
            entry.depth += 1
            try:
                yield
            finally:
                entry.depth -= 1
            return
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            await entry.lock.acquire()
            entry.owner, entry.depth = task, 1
            try:
                yield
            finally:
                entry.owner, entry.depth = None, 0
                entry.lock.release()
        finally:
            entry.users -= 1
            if not entry.users:
                del self._entries[key]
