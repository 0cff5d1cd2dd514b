"""The location table, sans-IO: bindings per AoR, kept in memory.

A :class:`Binding` is one registered contact (a ``__slots__`` object: about 0.6 KB with its
strings, see README). ``Location`` maps an AoR to its list of bindings, ordered by q (highest
first) and, for equal q, by registration order. Times are wall-clock seconds (``clock``), so
they survive a restart through the SQLite store. Expired bindings are invisible to every read;
:meth:`Location.expire_due` deletes them (the module calls it from one scheduler timer).
Every local change is reported to ``on_change(op, aor, binding)`` with op "put", "del" or
"expire" (a sweep's delete, which a shared store applies only if nobody refreshed the binding
meanwhile), or "flush" (every binding of the table, with aor "" and binding None); ``apply``/``replace_all`` install state that changed elsewhere (another node
through Redis) and report nothing.
"""
from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Collection, Iterator

#: q when the Contact had none (Kamailio's Q_UNSPECIFIED); sorts below every given q.
Q_UNSPECIFIED = -1
_intern = sys.intern


class Binding:
    """One contact of an AoR. ``expires`` is absolute (wall clock); ``q`` in 1/1000 units."""

    __slots__ = ("contact", "expires", "q", "call_id", "cseq", "path", "received", "socket",
                 "user_agent", "instance", "reg_id", "flags", "cflags", "methods", "ruid",
                 "last_modified")

    def __init__(self, contact: str, expires: float, q: int = Q_UNSPECIFIED, call_id: str = "",
                 cseq: int = 0, path: str = "", received: str = "", socket: str = "",
                 user_agent: str = "", instance: str = "", reg_id: int = 0, flags: int = 0,
                 cflags: int = 0, methods: int = -1, ruid: str = "",
                 last_modified: float = 0.0) -> None:
        self.contact = contact
        self.expires = expires
        self.q = q
        self.call_id = call_id
        self.cseq = cseq
        self.path = path
        self.received = received
        # Few distinct values across all bindings: share one string each.
        self.socket = _intern(socket)
        self.user_agent = _intern(user_agent)
        self.instance = instance
        self.reg_id = reg_id
        self.flags = flags
        self.cflags = cflags
        self.methods = methods
        self.ruid = ruid
        self.last_modified = last_modified

    def seconds_left(self, now: float) -> int:
        """Whole seconds until expiry (rounded up; at least 1 while the binding lives)."""
        return max(1, int(-(-(self.expires - now) // 1)))

    def as_row(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> Binding:
        return cls(*row)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Binding({self.contact!r}, q={self.q}, expires={self.expires:.0f})"


class RuidSource:
    """Unique binding ids (Kamailio's ruid): a per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = f"uloc-{os.getpid():x}-{os.urandom(4).hex()}-"
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count):x}"


class Location:
    """The table: AoR → bindings (live ones are those with ``expires > clock()``)."""

    def __init__(self, name: str, clock: Callable[[], float]) -> None:
        self.name = name
        self.clock = clock
        self.records: dict[str, list[Binding]] = {}
        self.new_ruid = RuidSource()
        self.on_change: Callable[[str, str, Binding | None], None] | None = None

    # -- reading ---------------------------------------------------------------------------
    def bindings(self, aor: str) -> list[Binding]:
        """Live bindings of ``aor``, best first (highest q, then oldest)."""
        now = self.clock()
        return [b for b in self.records.get(aor, ()) if b.expires > now]

    def aors(self) -> Iterator[tuple[str, list[Binding]]]:
        now = self.clock()
        for aor, bindings in list(self.records.items()):
            live = [b for b in bindings if b.expires > now]
            if live:
                yield aor, live

    def count_aors(self) -> int:
        return sum(1 for _ in self.aors())

    def count_contacts(self) -> int:
        now = self.clock()
        return sum(1 for bindings in self.records.values() for b in bindings if b.expires > now)

    # -- writing ---------------------------------------------------------------------------
    def put(self, aor: str, binding: Binding, replacing: Binding | None = None) -> None:
        """Insert ``binding`` (or replace ``replacing`` with it), keeping the q order."""
        bindings = self.records.setdefault(aor, [])
        if replacing is not None and replacing in bindings:
            bindings.remove(replacing)
            if replacing.ruid != binding.ruid:
                self._changed("del", aor, replacing)
        if not binding.ruid:
            binding.ruid = self.new_ruid()
        binding.last_modified = self.clock()
        _insert(bindings, binding)
        self._changed("put", aor, binding)

    def delete(self, aor: str, binding: Binding) -> bool:
        bindings = self.records.get(aor)
        if not bindings or binding not in bindings:
            return False
        bindings.remove(binding)
        if not bindings:
            del self.records[aor]
        self._changed("del", aor, binding)
        return True

    def delete_aor(self, aor: str) -> int:
        bindings = self.records.pop(aor, [])
        for binding in bindings:
            self._changed("del", aor, binding)
        return len(bindings)

    def flush(self) -> int:
        """Delete every binding: one change, however many there were."""
        count = sum(len(bindings) for bindings in self.records.values())
        self.records = {}
        if self.on_change is not None:
            self.on_change("flush", "", None)
        return count

    def expire_due(self, now: float | None = None) -> list[tuple[str, Binding]]:
        """Delete every binding expired at ``now``; return them (for events)."""
        if now is None:
            now = self.clock()
        gone: list[tuple[str, Binding]] = []
        for aor, bindings in list(self.records.items()):
            if all(b.expires > now for b in bindings):
                continue
            for binding in [b for b in bindings if b.expires <= now]:
                bindings.remove(binding)
                self._changed("expire", aor, binding)
                gone.append((aor, binding))
            if not bindings:
                del self.records[aor]
        return gone

    def load(self, rows: list[tuple[str, Binding]]) -> None:
        """Fill from storage at start (no change reported); rows in any order."""
        _fill(self.records, rows)

    def rows(self) -> list[tuple[str, Binding]]:
        """Every live binding with its AoR."""
        return [(aor, b) for aor, bindings in self.aors() for b in bindings]

    # -- state from elsewhere: not reported through on_change ---------------------------------
    def apply(self, aor: str, ruid: str, binding: Binding | None) -> None:
        """Install the binding ``ruid`` of ``aor`` as it is elsewhere (None: it is gone)."""
        bindings = self.records.get(aor, [])
        old = next((b for b in bindings if b.ruid == ruid), None)
        if old is not None:
            bindings.remove(old)
        if binding is not None:
            _insert(self.records.setdefault(aor, bindings), binding)
        elif not bindings:
            self.records.pop(aor, None)

    def replace_all(self, rows: list[tuple[str, Binding]],
                    keep: Collection[tuple[str, str]] = ()) -> None:
        """Swap in a whole new content at once; the (aor, ruid) bindings in ``keep`` (local
        writes not yet confirmed elsewhere) keep their local state."""
        kept = [(aor, ruid, next((b for b in self.records.get(aor, ()) if b.ruid == ruid),
                                 None)) for aor, ruid in keep]
        fresh: dict[str, list[Binding]] = {}
        _fill(fresh, rows)
        self.records = fresh
        for aor, ruid, binding in kept:
            self.apply(aor, ruid, binding)

    def _changed(self, op: str, aor: str, binding: Binding) -> None:
        if self.on_change is not None:
            self.on_change(op, aor, binding)


def _insert(bindings: list[Binding], binding: Binding) -> None:
    """Insert in q order: after every binding of a higher or equal q."""
    index = len(bindings)
    for i, other in enumerate(bindings):
        if other.q < binding.q:
            index = i
            break
    bindings.insert(index, binding)


def _fill(records: dict[str, list[Binding]], rows: list[tuple[str, Binding]]) -> None:
    for aor, binding in rows:
        records.setdefault(aor, []).append(binding)
    for bindings in records.values():
        bindings.sort(key=lambda b: (-b.q, b.last_modified))
