"""mtree.* RPC methods with Kamailio's names, params, result shapes and messages.

A tree name given to list/summary/reload selects every tree whose name starts with it
(Kamailio compares that way); ``.`` means all. ``mtree.match tree prefix mode`` answers
``{"PREFIX": "4930", "TVALUE": "berlin"}`` for mode 0, PREFIX being the prefix that matched
(Kamailio 5.6 puts the input as far as its tree walk went there, e.g. "4931" for 49's
value); for mode 2 it answers the list of every matching prefix's ``{"PREFIX", "TVALUE"}``,
longest first (Kamailio over jsonrpcs keeps only its last one). Checked against Kamailio
in tests/tables/test_kamailio_parity.py.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kamrouter.modules.mtree.tree import PrefixTree
from kamrouter.rpc.registry import MethodRegistry, RpcError

RELOADED = "Ok. Mtree reloaded."


class MtreeRpc:
    def __init__(self, trees: dict[str, PrefixTree],
                 reload: Callable[[list[str]], Awaitable[None]]) -> None:
        self._trees = trees
        self._reload = reload

    def register(self, registry: MethodRegistry) -> None:
        methods: dict[str, Callable[..., Any]] = {"list": self.list_prefixes, "summary": self.summary, "reload": self.reload,
                   "match": self.match}
        for name, method in methods.items():
            registry.register(f"mtree.{name}", method)

    def _selected(self, tname: str | None) -> list[PrefixTree]:
        if tname in (None, "", "."):
            return list(self._trees.values())
        return [tree for name, tree in self._trees.items() if name.startswith(tname)]

    def list_prefixes(self, tname: str | None = None) -> list[dict[str, Any]]:
        """List the content of one or all trees: tname, tprefix and tvalue (a list) per prefix."""
        if not self._trees:
            raise RpcError(500, "Empty tree list.")
        return [{"tname": tree.name, "tprefix": prefix, "tvalue": tree.values_of(prefix)}
                for tree in self._selected(tname) for prefix in tree.sorted_prefixes()]

    def summary(self, tname: str | None = None) -> list[dict[str, Any]]:
        """Print summary of loaded mtree tables: type, memory, prefixes, values, reloads."""
        if not self._trees:
            raise RpcError(500, "Empty tree list")
        trees = self._selected(tname)
        if not trees:
            raise RpcError(404, "Tree not found")
        return [{"table": tree.name,
                 "item": {"ttype": tree.type, "memsize": tree.memsize,
                          "nrnodes": len(tree.items), "nritems": tree.value_count,
                          "reload_count": tree.reload_count, "reload_time": tree.reload_time}}
                for tree in trees]

    async def reload(self, tname: str | None = None) -> str:
        """Reload mtrees from their files (tree name, or none for all); a bad file keeps
        the trees in use and the error names its file and line."""
        if not self._trees:
            raise RpcError(500, "No Mtrees defined.")
        trees = self._selected(tname)
        if not trees:
            raise RpcError(500, "Can not find specified Mtree")
        await self._reload([tree.name for tree in trees])
        return RELOADED

    def match(self, tname: str, prefix: str, mode: int) -> Any:
        """Match prefix value against mtree: tname, prefix, mode (0 longest prefix, 2 all)."""
        if not self._trees:
            raise RpcError(500, "Empty tree list.")
        if mode not in (0, 2):
            raise RpcError(500, "Invalid parameter 'mode'")
        tree = self._trees.get(tname)
        if tree is None:
            raise RpcError(404, "Tree not found")
        if mode == 2:  # the tree itself: operators' lookups are not counted as call traffic
            found = tree.all(prefix)
            if not found:
                raise RpcError(404, "Prefix not found")
            return [{"PREFIX": p, "TVALUE": value} for p, value in found]
        one = tree.longest(prefix)
        if one is None:
            raise RpcError(404, "Prefix not found")
        return {"PREFIX": one[0], "TVALUE": one[1]}
