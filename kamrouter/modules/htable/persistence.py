"""A table bound to its SQLite file: store now, and write-behind of changed keys.

Write-behind marks keys dirty as the table reports writes; a scheduler timer fires
``interval`` seconds after the first change and wakes one task, which writes every dirty key
in one transaction off the event loop (``trio.to_thread``).
"""
from __future__ import annotations

import trio

from kamrouter.modules.htable.store import SqliteStore
from kamrouter.modules.htable.table import Op, Row, Table
from kamrouter.timers import Scheduler, Timer


class TablePersistence:
    def __init__(self, table: Table, store: SqliteStore, scheduler: Scheduler,
                 interval: float) -> None:
        self.table = table
        self.store = store
        self.scheduler = scheduler
        self.interval = interval
        self._dirty: set[str] = set()
        self._everything = False
        self._timer: Timer | None = None
        self._due = trio.Event()
        self._lock = trio.Lock()
        if interval:
            table.on_write = self.note

    def note(self, op: Op) -> None:
        if op[0] == "flush":
            self._everything = True
            self._dirty.clear()
        else:
            self._dirty.add(op[1])
        if self._timer is None:
            self._timer = self.scheduler.call_later(self.interval, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._due.set()

    def load(self) -> list[Row]:
        """Read the stored rows (blocking: start-up only; reload uses :meth:`reload`)."""
        return self.store.load(self.table.name)

    async def reload(self) -> None:
        async with self._lock:
            rows = await trio.to_thread.run_sync(self.store.load, self.table.name)
            self.table.replace_all(rows)
            self._dirty.clear()
            self._everything = False

    async def store_all(self) -> int:
        """Write the whole table now (htable.store, shutdown); return the item count."""
        async with self._lock:
            self._dirty.clear()
            self._everything = False
            rows = self.table.rows()
            return await trio.to_thread.run_sync(self.store.replace, self.table.name, rows)

    async def write_behind(self) -> None:
        """The task that writes dirty keys whenever the timer says so (runs forever)."""
        while True:
            await self._due.wait()
            self._due = trio.Event()
            if self._everything:
                await self.store_all()
                continue
            async with self._lock:
                keys, self._dirty = self._dirty, set()
                upserts, deletes = [], []
                for key in keys:
                    item = self.table.lookup(key)
                    if item is None:
                        deletes.append(key)
                    else:
                        upserts.append((key, item.value, self.table.seconds_left(item)))
                await trio.to_thread.run_sync(self.store.write_batch, self.table.name,
                                              upserts, deletes)
