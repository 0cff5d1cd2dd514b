"""The mtree module: trees from ``[[mtree]]`` (a file and/or inline items), reloaded over
RPC by building new trees off the event loop and swapping them in only when all loaded."""
from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices, config_path
from kamrouter.modules.mtree.api import MtreeApi, TreeStats
from kamrouter.modules.mtree.config import TreeConfig
from kamrouter.modules.mtree.files import load_file, toml_rows
from kamrouter.modules.mtree.rpc import MtreeRpc
from kamrouter.modules.mtree.tree import PrefixTree, TreeError, build_tree
from kamrouter.rpc.registry import RpcError

log = logging.getLogger("kamrouter.mtree")


class MtreeModule(Module):
    name = "mtree"
    Config = TreeConfig
    config_is_list = True

    def __init__(self, router: RouterServices, config: list[TreeConfig]) -> None:
        super().__init__(router, config)
        problems = [f"mtree[{i}].name: {cfg.name!r} is defined twice"
                    for i, cfg in enumerate(config) if cfg.name in {c.name for c in config[:i]}]
        if problems:
            raise ConfigError(problems)
        self.configs = {cfg.name: cfg for cfg in sorted(config, key=lambda c: c.name)}
        self.paths = {cfg.name: config_path(router, cfg.file) for cfg in config if cfg.file}
        self.trees: dict[str, PrefixTree] = {}
        try:
            for name in self.configs:
                self.trees[name] = self._load(name, 1)
        except TreeError as exc:
            raise ConfigError([f"mtree {exc}"]) from None
        stats = router.stats
        tree_stats = {name: TreeStats(name, stats.counter) for name in self.configs}
        for name in self.configs:
            stats.gauge("mtree", f"{name}-prefixes", partial(self._prefix_count, name))
        self.reload_failures = stats.counter("mtree", "reload_failures")
        self._api = MtreeApi(self.trees, tree_stats)
        MtreeRpc(self.trees, self.reload).register(router.rpc)

    def api(self) -> MtreeApi:
        return self._api

    def _prefix_count(self, name: str) -> int:
        return len(self.trees[name].items)

    def _load(self, name: str, reload_count: int) -> PrefixTree:
        """A new tree ``name`` from its config's items and file."""
        cfg = self.configs[name]
        tree = PrefixTree(name, cfg.type, cfg.char_list, cfg.duplicates)
        tree.reload_count = reload_count
        if cfg.items:
            build_tree(tree, toml_rows(cfg.items), f"{name}: items")
        path: Path | None = self.paths.get(name)
        if path is not None:
            load_file(tree, path, cfg.multi)
        return tree.finish()

    async def reload(self, names: list[str]) -> None:
        """Reload ``names`` from their files; all or none are replaced."""
        def load_all() -> dict[str, PrefixTree]:
            return {name: self._load(name, self.trees[name].reload_count + 1)
                    for name in names if name in self.paths}
        try:
            fresh = await trio.to_thread.run_sync(load_all)
        except TreeError as exc:
            self.reload_failures.value += 1
            log.error("mtree reload failed, keeping the trees in use: %s", exc)
            raise RpcError(500, f"Mtree Reload Failed: {exc}") from None
        self.trees.update(fresh)
        for name, tree in fresh.items():
            log.info("mtree %s reloaded: %d prefixes from %s", name, len(tree.items),
                     self.paths[name])
