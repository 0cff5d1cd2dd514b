"""A prefix tree with Kamailio's mtree semantics, sans-IO, stored flat for memory.

Not a trie of dict nodes (a million prefixes would take a dict each): one dict of
prefix → value, and the set of prefix lengths present. A longest-prefix match looks the
input's prefixes up from the longest length present down (at most 63 lookups, usually a
handful). Measured in ``benchmarks/mtree.py``.

Values are strings (``type`` 0) or integers (``type`` 2). With ``duplicates = "allow"`` a
prefix holds several values, kept as a tuple, newest first (Kamailio's order); mode 0
returns the newest, mode 2 all of them. Equal values are shared, not copied per prefix.

Kamailio's rules kept: prefixes of at most 63 characters from ``char_list``; an input
character outside ``char_list`` within the tree's longest prefix length makes the match
fail (Kamailio: when its walk reaches it, which is the same for inputs whose prefixes are
in the tree).
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import Literal

Value = str | int
Stored = str | int | tuple[Value, ...]
Duplicates = Literal["error", "ignore", "allow"]
#: Kamailio's MT_MAX_DEPTH - 1.
MAX_PREFIX = 63
STRING, INTEGER = 0, 2


class TreeError(ValueError):
    """A prefix or value that cannot go into the tree; the message says why."""


class PrefixTree:
    """One named tree; :meth:`add` while loading, then only read (reload builds a new one)."""

    __slots__ = ("name", "type", "char_list", "duplicates", "items", "_lengths", "_upto", "_values",
                 "_invalid", "reload_count", "reload_time", "_memsize")

    def __init__(self, name: str, type: int = STRING, char_list: str = "0123456789",
                 duplicates: Duplicates = "error") -> None:
        self.name = name
        self.type = type
        self.char_list = char_list
        self.duplicates = duplicates
        self.items: dict[str, Stored] = {}
        #: Lengths present, longest first (what a lookup walks).
        self._lengths: tuple[int, ...] = ()
        #: ``_upto[n]``: the lengths present that are <= n, longest first (n up to the longest).
        self._upto: list[tuple[int, ...]] = [()]
        self._values: dict[Value, Value] = {}
        self._invalid = re.compile("[^" + re.escape(char_list) + "]")
        self.reload_count = 0
        self.reload_time = int(time.time())
        self._memsize: int | None = None

    # -- loading ------------------------------------------------------------------------------
    def add(self, prefix: str, text: str | int) -> None:
        """Add ``prefix`` → value (``text`` converted for integer trees)."""
        if not prefix:
            raise TreeError("empty prefix")
        if len(prefix) > MAX_PREFIX:
            raise TreeError(f"prefix {prefix[:20]!r}... longer than {MAX_PREFIX} characters")
        bad = self._invalid.search(prefix)
        if bad is not None:
            raise TreeError(f"prefix {prefix!r}: character {bad.group()!r} is not in "
                            f"char_list {self.char_list!r}")
        value = self._value(text)
        value = self._values.setdefault(value, value)  # one object per distinct value
        old = self.items.get(prefix)
        if old is None:
            self.items[prefix] = value
            return
        if self.duplicates == "ignore":
            return
        if self.duplicates == "error":
            raise TreeError(f"prefix {prefix!r} is already in the tree (set duplicates = "
                            "\"ignore\" or \"allow\" to accept it)")
        self.items[prefix] = (value, *old) if isinstance(old, tuple) else (value, old)

    def _value(self, text: str | int) -> Value:
        if self.type == INTEGER:
            if type(text) is int:
                return text
            try:
                return int(str(text).strip())
            except ValueError:
                raise TreeError(f"value {text!r} is not an integer (type = 2)") from None
        value = str(text)
        if not value:
            raise TreeError("empty value")
        return value

    def finish(self) -> PrefixTree:
        """Done loading: index the lengths and drop what only loading needed."""
        self._lengths = tuple(sorted({len(prefix) for prefix in self.items}, reverse=True))
        longest = self._lengths[0] if self._lengths else 0
        self._upto = [tuple(n for n in self._lengths if n <= size) for size in range(longest + 1)]
        self._values = {}
        return self

    # -- matching -----------------------------------------------------------------------------
    def _candidates(self, key: str) -> tuple[int, ...]:
        upto = self._upto
        size = len(key)
        return upto[size] if size < len(upto) else upto[-1]

    def _valid(self, key: str) -> bool:
        return self._invalid.search(key, 0, len(self._upto) - 1) is None

    def longest(self, key: str) -> tuple[str, Value] | None:
        """The longest prefix of ``key`` in the tree and its (newest) value (mode 0)."""
        get = self.items.get
        for length in self._candidates(key):
            prefix = key[:length]
            value = get(prefix)
            if value is not None:
                if not self._valid(key):
                    return None
                return prefix, value[0] if isinstance(value, tuple) else value
        return None

    def all(self, key: str) -> list[tuple[str, Value]]:
        """Every matching prefix and value, longest prefix first, newest value first (mode 2)."""
        if not self._valid(key):
            return []
        get = self.items.get
        found: list[tuple[str, Value]] = []
        for length in self._candidates(key):
            prefix = key[:length]
            value = get(prefix)
            if value is not None:
                if isinstance(value, tuple):
                    found.extend((prefix, one) for one in value)
                else:
                    found.append((prefix, value))
        return found

    # -- listing ------------------------------------------------------------------------------
    def values_of(self, prefix: str) -> list[Value]:
        value = self.items[prefix]
        return list(value) if isinstance(value, tuple) else [value]

    def sorted_prefixes(self) -> Iterator[str]:
        """Prefixes in Kamailio's walk order: char_list order, a prefix before its longer ones."""
        rank = {ch: chr(i + 1) for i, ch in enumerate(self.char_list)}
        table = str.maketrans(rank)
        return iter(sorted(self.items, key=lambda prefix: prefix.translate(table)))

    @property
    def value_count(self) -> int:
        return sum(len(v) if type(v) is tuple else 1 for v in self.items.values())

    @property
    def memsize(self) -> int:
        """Bytes the tree holds (dict, prefixes, distinct values), computed once."""
        if self._memsize is None:
            import sys

            size = sys.getsizeof(self.items)
            seen: set[int] = set()
            for prefix, value in self.items.items():
                size += sys.getsizeof(prefix)
                for one in (value if type(value) is tuple else (value,)):
                    if id(one) not in seen:
                        seen.add(id(one))
                        size += sys.getsizeof(one)
                if isinstance(value, tuple):
                    size += sys.getsizeof(value)
            self._memsize = size
        return self._memsize


def build_tree(tree: PrefixTree, rows: Iterable[tuple[int | str, str, Value]],
               source: str) -> PrefixTree:
    """Fill ``tree`` from ``(line, prefix, value)`` rows; errors name ``source:line``."""
    add = tree.add
    for line, prefix, value in rows:
        try:
            add(prefix, value)
        except TreeError as exc:
            raise TreeError(f"{source}:{line}: {exc}") from None
    return tree.finish()
