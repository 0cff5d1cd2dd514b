"""What routing scripts call: ``from kamrouter.script import htable``.

    if htable.get("bans", msg.src_ip) is not None: ...        # $sht(bans=>$si)
    htable.set("seen", msg.call_id, 1, expire=30)             # sht_setxi
    n = htable.inc("attempts", msg.src_ip)                    # $shtinc (initval rule)
    htable.count_name("bans", "%~10.0.")                      # $shtcn, Kamailio match prefixes
    async with htable.lock("quota", user): ...                 # sht_lock/sht_unlock

Reads and writes are plain calls served from memory (a Redis-backed table included: its
writes reach Redis in the background). Unknown tables raise :class:`NoSuchTable`.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kamrouter.modules.htable.locks import KeyLocks
from kamrouter.modules.htable.table import Table, Value


class NoSuchTable(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.message = (f"no htable named {name!r} (defined: {', '.join(known) or 'none'}; "
                        "add an [[htable]] section)")

    def __str__(self) -> str:
        return self.message


class HtableApi:
    def __init__(self, tables: dict[str, Table]) -> None:
        self._tables = tables
        self._locks = KeyLocks()

    def table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise NoSuchTable(name, list(self._tables)) from None

    def get(self, table: str, key: str) -> Value | None:
        """The value of ``key``; the table's initval (None when unset) if missing or expired."""
        try:
            return self._tables[table].get(key)
        except KeyError:
            raise NoSuchTable(table, list(self._tables)) from None

    def has(self, table: str, key: str) -> bool:
        return self.table(table).lookup(key) is not None

    def set(self, table: str, key: str, value: Value, expire: float | None = None) -> None:
        """Set ``key`` (int or str); ``expire`` seconds (0: never) overrides autoexpire."""
        self.table(table).set(key, value, expire)

    def delete(self, table: str, key: str) -> bool:
        """Remove ``key``; False when it was not there."""
        return self.table(table).delete(key)

    def inc(self, table: str, key: str, by: int = 1) -> int | None:
        """Add ``by`` atomically and return the new value; None if the value is a string, or
        the key is missing and the table has no initval."""
        return self.table(table).inc(key, by)

    def dec(self, table: str, key: str, by: int = 1) -> int | None:
        return self.table(table).inc(key, -by)

    def expire_left(self, table: str, key: str) -> int:
        """Seconds until ``key`` expires; 0 when missing or not expiring ($shtex)."""
        return self.table(table).expire_left(key)

    def set_expire(self, table: str, key: str, seconds: float) -> bool:
        """Expire ``key`` ``seconds`` from now (0: never); False when it is missing."""
        return self.table(table).set_expire(key, seconds)

    def count_name(self, table: str, expr: str) -> int:
        """Live items whose key matches ``expr`` (~~re, %~prefix, ~%suffix, ==exact, **)."""
        return self.table(table).count(expr)

    def count_value(self, table: str, expr: str) -> int:
        """Live items whose value matches ``expr`` (as count_name, plus eqN for integers)."""
        return self.table(table).count(expr, values=True)

    def delete_name(self, table: str, expr: str) -> int:
        """Delete items whose key matches ``expr``; return how many."""
        return self.table(table).delete_matching(expr)

    def delete_value(self, table: str, expr: str) -> int:
        return self.table(table).delete_matching(expr, values=True)

    def items(self, table: str, match: str | None = None) -> list[tuple[str, Value]]:
        """A snapshot of ``(key, value)`` pairs, optionally of keys matching ``match``;
        changing the table while looping over it is safe."""
        return [(key, item.value) for key, item in self.table(table).items(match)]

    def flush(self, table: str) -> None:
        self.table(table).flush()

    @asynccontextmanager
    async def lock(self, table: str, key: str) -> AsyncIterator[None]:
        """Hold ``key`` of ``table`` for a read-modify-write that awaits in between."""
        self.table(table)
        async with self._locks.hold((table, key)):
            yield
