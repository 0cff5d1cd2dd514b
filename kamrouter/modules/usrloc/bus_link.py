"""usrloc tables shared between worker processes through the state bus
(:mod:`kamrouter.modules.bus`, channel ``usrloc``): a phone registered through one worker is
found by every other, at once, in every db_mode (with ``"redis"`` too, so that it holds
while Redis is away: each worker still sends its own changes to Redis).

Each change of a :class:`~.location.Location` is published as the Redis link publishes a
binding's state, ``{l: table, s: [aor, ruid, row, op]}`` (the row is
:meth:`~.location.Binding.as_row`; op "put" or "del"), and ``{l: table, f: 1}`` for a
flush. Conflict rule, per binding (its ruid): a put or delete applies unless this worker's
copy was modified later (``last_modified``, wall clock: the last writer wins). Expiry needs
no message: every worker sweeps its copy on the same clock (worker 0 runs the
``usrloc:contact-expired`` event). With ``db_mode = "sqlite"`` worker 0 alone writes the
file: its own changes and every one the bus brings it (``on_applied``), and after loading a
dump (``on_loaded``: what changed while it was down) it writes the table anew.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.usrloc.location import Binding, Location
from kamrouter.modules.usrloc.redis_store import decode_row

CHANNEL = "usrloc"
#: A table another worker uses is created here too; its name is bounded.
MAX_TABLE_NAME = 64


class UsrlocBus:
    def __init__(self, bus: StateBus, tables: dict[str, Location],
                 table: Callable[[str], Location]) -> None:
        """``table(name)``: the module's table of that name, created on first use."""
        self.bus = bus
        self.tables = tables
        self.table = table
        #: Told of each change applied from another worker, as ``Location.on_change``
        #: reports local ones (table name first); and of each table a dump replaced.
        self.on_applied: Callable[[str, str, str, Binding | None], None] | None = None
        self.on_loaded: Callable[[Location], None] | None = None
        bus.register(CHANNEL, self)

    def attach(self, table: Location,
               then: Callable[[str, str, Binding | None], None] | None = None) -> None:
        """Publish ``table``'s local changes, and pass them on to ``then`` (a store)."""
        name = table.name

        def publish(op: str, aor: str, binding: Binding | None) -> None:
            if binding is None:
                self.bus.publish(CHANNEL, {"l": name, "f": 1})
            elif op != "expire":  # every worker sweeps its copy at the same wall-clock time
                self.bus.publish(CHANNEL, {"l": name,
                                           "s": [aor, binding.ruid, list(binding.as_row()), op]})
            if then is not None:
                then(op, aor, binding)
        table.on_change = publish

    def apply(self, payload: Any) -> None:
        table = self.table(_name(payload["l"]))
        if "f" in payload:
            table.replace_all([])
            if self.on_applied is not None:
                self.on_applied(table.name, "flush", "", None)
            return
        aor, ruid, row, op = payload["s"]
        if not isinstance(aor, str) or not isinstance(ruid, str) or op not in ("put", "del"):
            raise ValueError("not a binding change")
        theirs = decode_row(row)
        mine = next((b for b in table.records.get(aor, ()) if b.ruid == ruid), None)
        if mine is None or mine.last_modified <= theirs.last_modified:
            table.apply(aor, ruid, theirs if op == "put" else None)
            if self.on_applied is not None:
                self.on_applied(table.name, op, aor, theirs)

    def dump(self) -> dict[str, list[list[Any]]]:
        return {name: [[aor, list(binding.as_row())] for aor, binding in table.rows()]
                for name, table in self.tables.items()}

    def load(self, data: Any) -> None:
        for name, rows in data.items():
            bindings = [(aor, decode_row(row)) for aor, row in rows]
            if any(not isinstance(aor, str) for aor, _ in bindings):
                raise TypeError("not an AoR")
            table = self.table(_name(name))
            table.replace_all(bindings)
            if self.on_loaded is not None:
                self.on_loaded(table)


def _name(name: Any) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_TABLE_NAME:
        raise ValueError(f"not a location table name: {name!r}"[:100])
    return name
