"""One hash table: items, expiry and the match operators (sans-IO; the clock is injected).

Expiry is applied lazily and the same way everywhere: an item whose deadline has passed is
invisible to every read, count and update from that instant, whether or not the sweep has
removed it yet (Kamailio counted such items and let inc/dec revive them). The sweep
(:meth:`Table.expire_due`, driven by the router's scheduler at :meth:`Table.next_deadline`)
removes them and reports them for the ``htable:expired:<name>`` event.

Local writes are reported through ``on_write`` as ordered :data:`Op` tuples (the Redis link
replays them; the write-behind store marks keys dirty; the bus link publishes them to the
other workers). ``apply*``/``replace_all``/``merge*`` install state that already happened
elsewhere (Redis, a file, another worker) and report nothing.

Versions (only when ``stamper`` is set, i.e. the table is shared between workers by
:mod:`.bus_link`): every item carries the stamp of the assignment (set, expire change, or a
delete's tombstone) it descends from; an increment keeps its item's stamp, so increments
made on the same version in several workers all add up. A change from elsewhere wins if its
stamp is higher than the local version of its key (the last writer wins per key).
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable

from kamrouter.modules.htable.config import TableConfig
from kamcommon.htable_match import compile_match
from kamrouter.stats import Counter

Value = int | str
#: ("set", key, value, expire|None) | ("delete", key) | ("inc", key, delta)
#: | ("expire", key, seconds) | ("flush",)
Op = tuple
#: (key, value, seconds left or None for no expiry)
Row = tuple[str, Value, float | None]

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: How long a shared table remembers a deleted key's stamp.
TOMBSTONE_SECONDS = 60.0


class Item:
    """A value and its deadline on the table's clock (0.0: never expires)."""

    __slots__ = ("value", "expires", "stamp")

    def __init__(self, value: Value, expires: float, stamp: int = 0) -> None:
        self.value = value
        self.expires = expires
        #: The version of the assignment this value descends from (0: the config's, a file's).
        self.stamp = stamp

    @property
    def is_int(self) -> bool:
        return type(self.value) is int


class TableStats:
    """Per-table counters (``htable:<name>-hits`` and friends once registered)."""

    def __init__(self, hits: Counter, misses: Counter, expired: Counter) -> None:
        self.hits = hits
        self.misses = misses
        self.expired = expired

    @classmethod
    def named(cls, name: str, counter: Callable[[str, str], Counter] = Counter) -> TableStats:
        """``htable:<name>-hits``, ``-misses``, ``-expired``; ``counter`` registers them."""
        return cls(*(counter("htable", f"{name}-{what}") for what in ("hits", "misses", "expired")))


def check_value(value: object, what: str = "value") -> Value:
    """``value`` if it can be stored (a str, or an int in the signed 64-bit range)."""
    if type(value) is str:
        return value
    if type(value) is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{what} {value} does not fit in a signed 64-bit integer")
        return value
    raise TypeError(f"{what} must be an int or a str, got {type(value).__name__} {value!r}")


def check_key(key: object) -> str:
    if type(key) is not str:
        raise TypeError(f"key must be a str, got {type(key).__name__} {key!r}")
    return key


class Table:
    def __init__(self, config: TableConfig, clock: Callable[[], float],
                 stats: TableStats | None = None) -> None:
        self.config = config
        self.name = config.name
        self.autoexpire = float(config.autoexpire)
        self.updateexpire = config.updateexpire
        self.initval = config.initval
        self.stats = stats or TableStats.named(config.name)
        self._clock = clock
        self._items: dict[str, Item] = {}
        self._heap: list[tuple[float, str]] = []
        #: Expired items replaced by a write before the sweep reached them (still reported).
        self._expired_backlog: list[tuple[str, Value]] = []
        self.on_write: Callable[[Op], None] | None = None
        #: Called with a deadline earlier than any pending one (re-arm the sweep timer).
        self.on_deadline: Callable[[float], None] | None = None
        #: Shared between workers: gives a local assignment its stamp, above the one given.
        self.stamper: Callable[[int], int] | None = None
        #: key -> (stamp of its delete, clock time): a late older write must not revive it.
        self._tombstones: dict[str, tuple[int, float]] = {}
        #: The stamp of the last flush: nothing older applies any more.
        self.flushed = 0

    # -- reads -------------------------------------------------------------------------------
    def get(self, key: str) -> Value | None:
        """The value, or ``initval`` (None when unset) for a missing or expired key."""
        item = self._items.get(key)
        if item is not None and (not item.expires or item.expires > self._clock()):
            self.stats.hits.value += 1
            return item.value
        self.stats.misses.value += 1
        return self.initval

    def lookup(self, key: str) -> Item | None:
        """The live item (no initval, no hit/miss counting): for RPC and iteration."""
        item = self._items.get(key)
        if item is None or (item.expires and item.expires <= self._clock()):
            return None
        return item

    def expire_left(self, key: str) -> int:
        """Whole seconds until ``key`` expires (rounded up); 0 when missing or not expiring."""
        item = self.lookup(key)
        if item is None or not item.expires:
            return 0
        return max(1, int(-(-(item.expires - self._clock()) // 1)))

    def seconds_left(self, item: Item) -> float | None:
        return item.expires - self._clock() if item.expires else None

    def items(self, expr: str | None = None, *, values: bool = False) -> list[tuple[str, Item]]:
        """A snapshot of the live items (optionally only names/values matching ``expr``)."""
        now = self._clock()
        live = [(k, i) for k, i in self._items.items() if not i.expires or i.expires > now]
        if expr is None:
            return live
        match = compile_match(expr, values=values)
        return [(k, i) for k, i in live if match(i.value if values else k)]

    def count(self, expr: str, *, values: bool = False) -> int:
        """Live items whose name (or value) matches ``expr`` ($shtcn / $shtcv)."""
        return len(self.items(expr, values=values))

    def __len__(self) -> int:
        """Live items: exact, and O(1) unless some expired item awaits the sweep."""
        deadline = self.next_deadline()
        if deadline is None or deadline > self._clock():
            return len(self._items)
        return len(self.items())

    # -- local writes ------------------------------------------------------------------------
    def set(self, key: str, value: Value, expire: float | None = None) -> None:
        """Set ``key``; ``expire`` seconds (0: never) overrides the autoexpire rule."""
        check_key(key)
        check_value(value)
        if expire is not None and expire < 0:
            raise ValueError(f"expire must be >= 0 seconds, got {expire}")
        stamp = self._next_stamp(key)
        self._store(key, value, self._deadline(self.lookup_or_reap(key), expire), stamp)
        if self.on_write is not None:
            self.on_write(("set", key, value, expire))

    def delete(self, key: str) -> bool:
        """Remove ``key``; False when it was missing (or already expired)."""
        stamp = self._next_stamp(key)
        existed = self.lookup_or_reap(key) is not None
        self._items.pop(key, None)
        if self.stamper is not None:
            self._bury(key, stamp)
        if existed and self.on_write is not None:
            self.on_write(("delete", key))
        return existed

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Atomically add ``delta``; None when the value is a string, or the key is missing and
        the table has no initval (with one, a missing key starts from it)."""
        check_key(key)
        base = 0 if self.stamper is None else self.version(key)
        item = self.lookup_or_reap(key)
        if item is None:
            if self.initval is None:
                return None
            value = self.initval + delta
        elif type(item.value) is not int:
            return None
        else:
            value = item.value + delta
        check_value(value, f"{self.name}[{key!r}] after adding {delta}")
        self._store(key, value, self._deadline(item, None), base)
        if self.on_write is not None:
            self.on_write(("inc", key, delta))
        return value

    def set_expire(self, key: str, seconds: float) -> bool:
        """Expire ``key`` ``seconds`` from now (0: never); False when it is missing."""
        if seconds < 0:
            raise ValueError(f"expire must be >= 0 seconds, got {seconds}")
        stamp = self._next_stamp(key)
        item = self.lookup_or_reap(key)
        if item is None:
            return False
        self._store(key, item.value, self._clock() + seconds if seconds else 0.0, stamp)
        if self.on_write is not None:
            self.on_write(("expire", key, seconds))
        return True

    def delete_matching(self, expr: str, *, values: bool = False) -> int:
        """Delete every live item whose name (or value) matches ``expr``; return how many."""
        doomed = [key for key, _ in self.items(expr, values=values)]
        for key in doomed:
            self.delete(key)
        return len(doomed)

    def flush(self) -> None:
        if self.stamper is not None:
            self.flushed = self.stamper(self.flushed)
            self._tombstones.clear()
        self._items.clear()
        self._heap.clear()
        if self.on_write is not None:
            self.on_write(("flush",))

    # -- state from elsewhere (Redis, files): not reported through on_write ---------------------
    def apply(self, key: str, value: Value, ttl: float | None) -> None:
        """Install ``key`` as it is elsewhere: ``ttl`` seconds left, None for no expiry."""
        self._store(key, value, self._clock() + ttl if ttl is not None else 0.0)

    def apply_delete(self, key: str) -> None:
        self._items.pop(key, None)

    def apply_flush(self, keep: Collection[str] = ()) -> None:
        kept = {k: self._items[k] for k in keep if k in self._items}
        self._items = kept
        self._rebuild_heap()

    def replace_all(self, rows: Iterable[Row], keep: Collection[str] = ()) -> None:
        """Swap in a whole new content at once (readers never see half of it); keys in
        ``keep`` (local writes not yet confirmed elsewhere) keep their local state."""
        now = self._clock()
        fresh = {key: Item(value, now + ttl if ttl is not None else 0.0)
                 for key, value, ttl in rows}
        for key in keep:
            item = self._items.get(key)
            if item is None:
                fresh.pop(key, None)
            else:
                fresh[key] = item
        self._items = fresh
        self._rebuild_heap()

    # -- state from other workers (:mod:`.bus_link`): the higher stamp wins -----------------------
    def version(self, key: str) -> int:
        """The stamp of ``key``'s last assignment (its item's, even if expired, or its
        delete's), never below the last flush's."""
        item = self._items.get(key)
        if item is not None:
            return max(item.stamp, self.flushed)
        tomb = self._tombstones.get(key)
        return max(tomb[0], self.flushed) if tomb is not None else self.flushed

    def merge(self, key: str, value: Value, ttl: float | None, stamp: int) -> None:
        """Another worker assigned ``key`` (set, or an expire change): take it if newer."""
        if stamp > self.version(key):
            self._tombstones.pop(key, None)
            self._store(key, value, self._clock() + ttl if ttl is not None else 0.0, stamp)

    def merge_inc(self, key: str, delta: int, base: int, value: Value,
                  ttl: float | None) -> None:
        """Another worker added ``delta`` to version ``base`` of ``key``, giving ``value``:
        on the same version, add it here too (concurrent increments all count); on an
        older one, take the other worker's result; on a newer one, drop it (an assignment
        made since replaces what it incremented)."""
        version = self.version(key)
        if base > version:
            self.merge(key, value, ttl, base)
        elif base == version:
            item = self.lookup_or_reap(key)
            start = self.initval if item is None else item.value
            if type(start) is not int:
                return
            self._store(key, check_value(start + delta), self._deadline(item, None), base)

    def merge_delete(self, key: str, stamp: int) -> None:
        if stamp > self.version(key):
            self._items.pop(key, None)
            self._bury(key, stamp)

    def merge_flush(self, stamp: int) -> None:
        """Another worker flushed the table: what was assigned before its flush goes."""
        if stamp <= self.flushed:
            return
        self.flushed = stamp
        self._items = {k: i for k, i in self._items.items() if i.stamp > stamp}
        self._tombstones = {k: t for k, t in self._tombstones.items() if t[0] > stamp}
        self._rebuild_heap()

    def stamped_rows(self) -> list[tuple[str, Value, float | None, int]]:
        """The live content with each item's stamp (a dump for a starting worker)."""
        now = self._clock()
        return [(k, i.value, i.expires - now if i.expires else None, i.stamp)
                for k, i in self.items()]

    def replace_stamped(self, rows: list[tuple[str, Value, float | None, int]],
                        flushed: int) -> None:
        """Swap in another worker's :meth:`stamped_rows` (at start)."""
        self.replace_all((key, value, ttl) for key, value, ttl, _ in rows)
        for key, _, _, stamp in rows:
            self._items[key].stamp = stamp
        self.flushed = flushed
        self._tombstones.clear()

    def rows(self) -> list[Row]:
        """The live content as rows (for storing and exporting)."""
        return [(key, value, ttl) for key, value, ttl, _ in self.stamped_rows()]

    # -- expiry --------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """The earliest pending deadline (possibly of an item since updated: harmless)."""
        if self._expired_backlog:
            return self._clock()
        return self._heap[0][0] if self._heap else None

    def expire_due(self, now: float) -> list[tuple[str, Value]]:
        """Remove items whose deadline is at or before ``now``; return them in deadline order."""
        expired, self._expired_backlog = self._expired_backlog, []
        heap, items = self._heap, self._items
        while heap and heap[0][0] <= now:
            deadline, key = heapq.heappop(heap)
            item = items.get(key)
            if item is not None and item.expires == deadline:
                del items[key]
                expired.append((key, item.value))
        self.stats.expired.value += len(expired)
        return expired

    # -- internals -----------------------------------------------------------------------------
    def lookup_or_reap(self, key: str) -> Item | None:
        """The live item; an expired one is taken out now and queued for its event."""
        item = self._items.get(key)
        if item is not None and item.expires and item.expires <= self._clock():
            del self._items[key]
            self._expired_backlog.append((key, item.value))
            if self.on_deadline is not None:
                self.on_deadline(self._clock())
            return None
        return item

    def _next_stamp(self, key: str) -> int:
        return 0 if self.stamper is None else self.stamper(self.version(key))

    def _bury(self, key: str, stamp: int) -> None:
        """Remember a delete for :data:`TOMBSTONE_SECONDS` (a change from elsewhere older
        than that is not expected: the bus delivers within milliseconds)."""
        tombs = self._tombstones
        now = self._clock()
        tombs.pop(key, None)
        tombs[key] = (stamp, now)
        while True:
            oldest = next(iter(tombs))
            if tombs[oldest][1] > now - TOMBSTONE_SECONDS:
                return
            del tombs[oldest]

    def _deadline(self, existing: Item | None, expire: float | None) -> float:
        if expire is not None:
            return self._clock() + expire if expire else 0.0
        if existing is not None and not (self.autoexpire and self.updateexpire):
            return existing.expires
        return self._clock() + self.autoexpire if self.autoexpire else 0.0

    def _store(self, key: str, value: Value, deadline: float, stamp: int = 0) -> None:
        item = self._items.get(key)
        if item is None:
            self._items[key] = Item(value, deadline, stamp)
        else:
            item.stamp = stamp
            if item.expires == deadline:
                item.value = value
                return
            item.value, item.expires = value, deadline
        if deadline:
            heap = self._heap
            earlier = not heap or deadline < heap[0][0]
            heapq.heappush(heap, (deadline, key))
            if len(heap) > 2 * len(self._items) + 1024:
                self._rebuild_heap()
            if earlier and self.on_deadline is not None:
                self.on_deadline(deadline)

    def _rebuild_heap(self) -> None:
        self._heap = [(i.expires, k) for k, i in self._items.items() if i.expires]
        heapq.heapify(self._heap)
