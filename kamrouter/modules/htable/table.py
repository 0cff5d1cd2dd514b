"""One hash table: items, expiry and the match operators (sans-IO; the clock is injected).

Expiry is applied lazily and the same way everywhere: an item whose deadline has passed is
invisible to every read, count and update from that instant, whether or not the sweep has
removed it yet (Kamailio counted such items and let inc/dec revive them). The sweep
(:meth:`Table.expire_due`, driven by the router's scheduler at :meth:`Table.next_deadline`)
removes them and reports them for the ``htable:expired:<name>`` event.

Local writes are reported through ``on_write`` as ordered :data:`Op` tuples (the Redis link
replays them; the write-behind store marks keys dirty). ``apply*``/``replace_all`` install
state that already happened elsewhere (Redis, a file) and report nothing.
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


class Item:
    """A value and its deadline on the table's clock (0.0: never expires)."""

    __slots__ = ("value", "expires")

    def __init__(self, value: Value, expires: float) -> None:
        self.value = value
        self.expires = expires

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
        self._store(key, value, self._deadline(self.lookup_or_reap(key), expire))
        if self.on_write is not None:
            self.on_write(("set", key, value, expire))

    def delete(self, key: str) -> bool:
        """Remove ``key``; False when it was missing (or already expired)."""
        existed = self.lookup_or_reap(key) is not None
        self._items.pop(key, None)
        if existed and self.on_write is not None:
            self.on_write(("delete", key))
        return existed

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Atomically add ``delta``; None when the value is a string, or the key is missing and
        the table has no initval (with one, a missing key starts from it)."""
        check_key(key)
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
        self._store(key, value, self._deadline(item, None))
        if self.on_write is not None:
            self.on_write(("inc", key, delta))
        return value

    def set_expire(self, key: str, seconds: float) -> bool:
        """Expire ``key`` ``seconds`` from now (0: never); False when it is missing."""
        if seconds < 0:
            raise ValueError(f"expire must be >= 0 seconds, got {seconds}")
        item = self.lookup_or_reap(key)
        if item is None:
            return False
        self._store(key, item.value, self._clock() + seconds if seconds else 0.0)
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

    def rows(self) -> list[Row]:
        """The live content as rows (for storing and exporting)."""
        now = self._clock()
        return [(k, i.value, i.expires - now if i.expires else None) for k, i in self.items()]

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

    def _deadline(self, existing: Item | None, expire: float | None) -> float:
        if expire is not None:
            return self._clock() + expire if expire else 0.0
        if existing is not None and not (self.autoexpire and self.updateexpire):
            return existing.expires
        return self._clock() + self.autoexpire if self.autoexpire else 0.0

    def _store(self, key: str, value: Value, deadline: float) -> None:
        item = self._items.get(key)
        if item is None:
            self._items[key] = Item(value, deadline)
        else:
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
