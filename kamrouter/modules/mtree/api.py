"""What routing scripts call: ``from kamrouter.script import mtree``.

    setid = mtree.mt_match(msg, "carriers", msg.ruri_user)       # longest prefix's value
    if setid is None:
        sl.send_reply(msg, 404, "No route")
    every = mtree.mt_match(msg, "carriers", msg.ruri_user, 2)    # all values, longest first
    prefix, value = mtree.match("carriers", "4930123")           # no message, with the prefix

``mt_match`` also stores its result where Kamailio's pv_value / pv_values go:
``msg.vars["tvalue"]`` (mode 0) or ``msg.vars["tvalues"]`` (mode 2). It returns the value
(None: no match) where Kamailio returns 1/-1. Unknown trees raise :class:`NoSuchTree`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kamrouter.modules.mtree.tree import PrefixTree, Value
from kamrouter.stats import Counter


class NoSuchTree(KeyError):
    """mt_match on a tree that is not configured."""


class TreeStats:
    __slots__ = ("matched", "not_matched")

    def __init__(self, name: str, counter: Callable[[str, str], Counter]) -> None:
        self.matched = counter("mtree", f"{name}-matched")
        self.not_matched = counter("mtree", f"{name}-not_matched")


class MtreeApi:
    def __init__(self, trees: dict[str, PrefixTree], stats: dict[str, TreeStats]) -> None:
        self._trees = trees  # the module's dict: reload swaps its values
        self._stats = stats

    def tree(self, name: str) -> PrefixTree:
        tree = self._trees.get(name)
        if tree is None:
            raise NoSuchTree(f"no mtree {name!r} (configured: {', '.join(self._trees)})")
        return tree

    def match(self, tree: str, key: str) -> tuple[str, Value] | None:
        """The longest prefix of ``key`` in ``tree`` and its value, or None."""
        found = self.tree(tree).longest(key)
        stats = self._stats[tree]
        if found is None:
            stats.not_matched.value += 1
        else:
            stats.matched.value += 1
        return found

    def match_all(self, tree: str, key: str) -> list[tuple[str, Value]]:
        """Every matching prefix of ``key`` with its values, longest first."""
        found = self.tree(tree).all(key)
        stats = self._stats[tree]
        if found:
            stats.matched.value += 1
        else:
            stats.not_matched.value += 1
        return found

    def mt_match(self, msg: Any, tree: str, key: str | None, mode: int = 0) -> Any:
        """Kamailio's mt_match: mode 0 the longest prefix's value (``msg.vars["tvalue"]``),
        mode 2 the values of all matching prefixes (``msg.vars["tvalues"]``); None: no match."""
        if mode == 2:
            values = [value for _, value in self.match_all(tree, key or "")] or None
            if values is not None:
                msg.vars["tvalues"] = values
            return values
        found = self.match(tree, key or "")
        if found is None:
            return None
        msg.vars["tvalue"] = found[1]
        return found[1]
