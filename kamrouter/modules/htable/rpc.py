"""htable.* RPC methods: Kamailio's names, positional params, result shapes and messages.

Differences from Kamailio, on purpose: numeric-looking keys need no ``s:`` prefix (a JSON
integer key is taken as its text); ``htable.setex`` on a missing key is a 404 instead of a
silent "Ok"; per-item expiry works on every table, not only on autoexpire ones;
``htable.dump`` takes an optional match expression and adds ``expires_in`` to each item;
``htable.listTables`` and ``htable.stats`` list tables in definition order (Kamailio: reversed)
and ``htable.listTables`` adds ``backend`` and ``items``.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from kamcommon.htable_match import MatchError
from kamrouter.modules.htable.table import Item, Table
from kamrouter.rpc.registry import MethodRegistry, RpcError

KEY_SET = "Ok. Key set to new value."


def bucket_of(key: str, slots: int) -> int:
    """The bucket a key falls in (dump/stats layout only; stable across runs and nodes)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) & (slots - 1)


def _expire_text(table: Table, item: Item) -> str:
    left = table.seconds_left(item)
    if left is None:
        return "NEVER"  # as Kamailio says for an item without expiry
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + left))


def _expires_in(table: Table, item: Item) -> int | None:
    left = table.seconds_left(item)
    return None if left is None else max(1, int(-(-left // 1)))


def _seconds(value: int, name: str = "expire") -> int:
    if value < 0:
        raise RpcError(400, f"Invalid {name} value {value} (seconds, must be >= 0)")
    return value


class HtableRpc:
    def __init__(self, tables: dict[str, Table], describe: Callable[[Table], dict[str, Any]],
                 reload: Callable[[Table], Awaitable[None]],
                 store: Callable[[Table], Awaitable[None]]) -> None:
        self.tables = tables
        self.describe = describe
        self._reload = reload
        self._store = store

    def register(self, registry: MethodRegistry) -> None:
        for name in ("get", "sets", "seti", "setex", "setxs", "setxi", "delete", "dump",
                     "listTables", "stats", "flush", "reload", "store"):
            registry.register(f"htable.{name}", getattr(self, name))

    def _table(self, name: str) -> Table:
        table = self.tables.get(name)
        if table is None:
            raise RpcError(500, "No such htable")
        return table

    def _set(self, table: str, key: str, value: int | str, expire: int | None) -> str:
        try:
            self._table(table).set(key, value, expire)
        except (TypeError, ValueError) as exc:
            raise RpcError(400, f"Invalid value: {exc}") from None
        return KEY_SET

    def get(self, table: str, key: str) -> dict[str, Any]:
        """Get an item: {"item": {name, value, flags (2 string, 0 integer), expire}}."""
        t = self._table(table)
        item = t.lookup(key)
        if item is None:
            raise RpcError(500, "Key name doesn't exist in htable.")
        return {"item": {"name": key, "value": item.value, "flags": 0 if item.is_int else 2,
                         "expire": _expire_text(t, item)}}

    def sets(self, table: str, key: str, value: str) -> str:
        """Set an item to a string value (numbers are taken as their text)."""
        return self._set(table, key, value, None)

    def seti(self, table: str, key: str, value: int) -> str:
        """Set an item to an integer value."""
        return self._set(table, key, value, None)

    def setex(self, table: str, key: str, expire: int) -> str:
        """Set the expire of an item: seconds from now (0: never expires)."""
        if not self._table(table).set_expire(key, _seconds(expire)):
            raise RpcError(404, "Key not found in htable.")
        return "Ok"

    def setxs(self, table: str, key: str, value: str, expire: int) -> str:
        """Set an item to a string value that expires in the given seconds (0: never)."""
        return self._set(table, key, value, _seconds(expire))

    def setxi(self, table: str, key: str, value: int, expire: int) -> str:
        """Set an item to an integer value that expires in the given seconds (0: never)."""
        return self._set(table, key, value, _seconds(expire))

    def delete(self, table: str, key: str) -> str:
        """Delete an item."""
        if not self._table(table).delete(key):
            raise RpcError(404, "Key not found in htable.")
        return "Ok. Key deleted."

    def dump(self, table: str, match: str | None = None) -> list[dict[str, Any]]:
        """Dump a table as its non-empty buckets; optional match expression on key names
        (~~regex, %~prefix, ~%suffix, ==exact)."""
        t = self._table(table)
        try:
            items = t.items(match)
        except MatchError as exc:
            raise RpcError(400, str(exc)) from None
        slots = t.config.slots
        buckets: dict[int, list[dict[str, Any]]] = {}
        for key, item in items:
            buckets.setdefault(bucket_of(key, slots), []).append(
                {"name": key, "value": item.value, "type": "int" if item.is_int else "str",
                 "expires_in": _expires_in(t, item)})
        return [{"entry": entry, "size": len(slot), "slot": slot}
                for entry, slot in sorted(buckets.items())]

    def listTables(self) -> list[dict[str, Any]]:  # noqa: N802 - Kamailio's name
        """List the tables and their attributes."""
        if not self.tables:
            raise RpcError(500, "No htables")
        return [self.describe(t) for t in self.tables.values()]

    def stats(self) -> list[dict[str, Any]]:
        """Per table: bucket count, items, and the fewest/most items in one bucket."""
        if not self.tables:
            raise RpcError(500, "No htables")
        result = []
        for t in self.tables.values():
            slots = t.config.slots
            counts: dict[int, int] = {}
            for key, _ in t.items():
                entry = bucket_of(key, slots)
                counts[entry] = counts.get(entry, 0) + 1
            total = sum(counts.values())
            result.append({"name": t.name, "slots": slots, "all": total,
                           "min": min(counts.values()) if len(counts) == slots else 0,
                           "max": max(counts.values(), default=0)})
        return result

    def flush(self, table: str) -> str:
        """Delete every item of a table."""
        self._table(table).flush()
        return "Ok. Htable flushed."

    async def reload(self, table: str) -> str:
        """Reload a table from its SQLite file, static file or Redis."""
        await self._reload(self._table(table))
        return "Ok. Htable reloaded."

    async def store(self, table: str) -> str:
        """Write a table to its SQLite file now."""
        await self._store(self._table(table))
        return "Ok. Htable successfully stored to DB."
