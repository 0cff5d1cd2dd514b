"""htable tables in memory shared between worker processes through the state bus
(:mod:`kamrouter.modules.bus`, channel ``htable``).

Every local write of a table (script or RPC) is published as the item's resulting state,
in the shape the Redis link publishes (``k`` key, ``v`` the value encoded as in Redis,
``t`` ms left or -1), plus ``h`` the table, ``s`` the write's stamp: ``{h, k, v, t, s}``
for a set or an expire change, ``{h, k, s}`` for a delete, ``{h, f: stamp}`` for a flush,
and ``{h, k, v, t, b: base stamp, d: delta}`` for an increment. Conflicts resolve as
:class:`~.table.Table` says: the higher stamp (the later write, by the machine's monotonic
clock) wins per key, and increments of one version add up in every worker. Expiry needs no
message: every worker expires an item at the same moment, give or take the delivery time.
A table with ``backend = "redis"`` stays off the bus (Redis shares it already).
"""
from __future__ import annotations

from typing import Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.htable.redis_link import decode, encode
from kamrouter.modules.htable.table import Op, Table, Value, check_key, check_value

CHANNEL = "htable"


class HtableBus:
    def __init__(self, bus: StateBus, tables: dict[str, Table]) -> None:
        self.bus = bus
        self.tables = tables
        for table in tables.values():
            table.stamper = bus.stamp
            previous = table.on_write  # the SQLite write-behind keeps noting its writes

            def publish(op: Op, table: Table = table, previous: Any = previous) -> None:
                self.publish(table, op)
                if previous is not None:
                    previous(op)
            table.on_write = publish
        bus.register(CHANNEL, self)

    def publish(self, table: Table, op: Op) -> None:
        kind = op[0]
        if kind == "flush":
            self.bus.publish(CHANNEL, {"h": table.name, "f": table.flushed})
            return
        key = op[1]
        if kind == "delete":
            self.bus.publish(CHANNEL, {"h": table.name, "k": key, "s": table.version(key)})
            return
        item = table.lookup(key)
        if item is None:
            return
        state = {"h": table.name, "k": key, "v": encode(item.value),
                 "t": _ms(table.seconds_left(item))}
        if kind == "inc":
            state.update(b=item.stamp, d=op[2])
        else:
            state["s"] = item.stamp
        self.bus.publish(CHANNEL, state)

    def apply(self, payload: Any) -> None:
        table = self.tables[payload["h"]]
        if "f" in payload:
            table.merge_flush(_int(payload["f"]))
            return
        key = check_key(payload["k"])
        if "v" not in payload:
            table.merge_delete(key, _int(payload["s"]))
            return
        value = _value(payload["v"])
        left = _seconds(payload["t"])
        if "d" in payload:
            table.merge_inc(key, _int(payload["d"]), _int(payload["b"]), value, left)
        else:
            table.merge(key, value, left, _int(payload["s"]))

    def dump(self) -> dict[str, Any]:
        return {name: {"f": table.flushed,
                       "r": [[key, encode(value), _ms(ttl), stamp]
                             for key, value, ttl, stamp in table.stamped_rows()]}
                for name, table in self.tables.items()}

    def load(self, data: dict[str, Any]) -> None:
        for name, content in data.items():
            table = self.tables.get(name)
            if table is not None:
                rows = [(check_key(key), _value(value), _seconds(ms), _int(stamp))
                        for key, value, ms, stamp in content["r"]]
                table.replace_stamped(rows, _int(content["f"]))


def _ms(left: float | None) -> int:
    """Time left as the Redis link publishes it: ms (at least 1), -1 for no expiry."""
    return -1 if left is None else max(1, int(left * 1000))


def _seconds(ms: Any) -> float | None:
    ms = _int(ms)
    return ms / 1000 if ms >= 0 else None


def _value(text: Any) -> Value:
    if type(text) is not str:
        raise TypeError(f"not an encoded value: {text!r}")
    return check_value(decode(text))


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"not an integer: {value!r}")
    return value
