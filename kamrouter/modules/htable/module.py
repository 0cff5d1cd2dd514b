"""The htable module: tables from ``[[htable]]``, wired to the scheduler (expiry sweeps,
write-behind), SQLite/static files, Redis, RPC, stats and the script API; with several
worker processes, every table not in Redis is shared by the state bus (:mod:`.bus_link`)."""
from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.htable.api import HtableApi
from kamrouter.modules.htable.bus_link import HtableBus
from kamrouter.modules.htable.config import TableConfig
from kamrouter.modules.htable.persistence import TablePersistence
from kamrouter.redis_client import open_client
from kamrouter.modules.htable.redis_link import RedisLink
from kamrouter.redis_mirror import LinkStats
from kamrouter.modules.htable.rpc import HtableRpc
from kamrouter.modules.htable.store import SqliteStore, load_static
from kamrouter.modules.htable.table import Table, TableStats
from kamrouter.rpc.registry import RpcError
from kamrouter.timers import Timer

log = logging.getLogger("kamrouter.htable")

#: Expired items are swept (and their events emitted) at most this often per table.
SWEEP_COALESCE = 0.05
#: How long stop() tries to hand queued writes to Redis.
STOP_FLUSH_TIMEOUT = 2.0


class _Expiry:
    """The one scheduler timer of a table, armed at its earliest deadline."""

    def __init__(self, module: HtableModule, table: Table) -> None:
        self.module = module
        self.table = table
        self.timer: Timer | None = None
        table.on_deadline = self.arm

    def arm(self, deadline: float) -> None:
        timer = self.timer
        if timer is not None and not timer.cancelled:
            if timer.deadline <= deadline:
                return
            timer.cancel()
        self.timer = self.module.router.scheduler.call_at(deadline, self.sweep)

    def sweep(self) -> None:
        self.timer = None
        router = self.module.router
        now = router.clock()
        event = f"htable:expired:{self.table.name}"
        # Every worker expires its copy of the table (shared by the state bus or Redis); the
        # event runs once for the router, in worker 0.
        emit = not router.worker_index
        for key, value in self.table.expire_due(now):
            if emit:
                router.emit(event, table=self.table.name, key=key, value=value)
        deadline = self.table.next_deadline()
        if deadline is not None:
            self.arm(max(deadline, now + SWEEP_COALESCE))

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class HtableModule(Module):
    name = "htable"
    Config = TableConfig
    config_is_list = True

    def __init__(self, router: RouterServices, config: list[TableConfig]) -> None:
        super().__init__(router, config)
        base_dir = Path(getattr(getattr(router, "settings", None), "base_dir", None) or ".")
        problems = TableConfig.validate_all(config)
        if problems:
            raise ConfigError(problems)
        self.tables: dict[str, Table] = {}
        self.links: dict[str, RedisLink] = {}
        self.persistence: dict[str, TablePersistence] = {}
        self.static_files: dict[str, Path] = {}
        self._expiry: list[_Expiry] = []
        for cfg in config:
            self.tables[cfg.name] = table = self._make_table(cfg)
            self._expiry.append(_Expiry(self, table))
            if cfg.backend == "redis":
                self.links[cfg.name] = RedisLink(
                    table, cfg, partial(open_client, cfg.redis_url),
                    LinkStats.named("htable", cfg.name, router.stats.counter))
            elif cfg.persist == "sqlite":
                store = SqliteStore(_resolve(base_dir, cfg.db_file))
                binding = TablePersistence(table, store, router.scheduler, cfg.write_behind)
                self.persistence[cfg.name] = binding
                table.replace_all(_loading(cfg, binding.load))
            elif cfg.load_file:
                path = self.static_files[cfg.name] = _resolve(base_dir, cfg.load_file)
                table.replace_all(load_static(path))
        if router.bus is not None:  # several workers: share the tables Redis does not
            HtableBus(router.bus, {name: table for name, table in self.tables.items()
                                   if name not in self.links})
        self._api = HtableApi(self.tables)
        HtableRpc(self.tables, self.describe, self.reload, self.store).register(router.rpc)

    def _make_table(self, cfg: TableConfig) -> Table:
        stats = self.router.stats
        table = Table(cfg, self.router.clock, TableStats.named(cfg.name, stats.counter))
        stats.gauge("htable", f"{cfg.name}-items", lambda: len(table))
        return table

    def api(self) -> HtableApi:
        return self._api

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        for expiry in self._expiry:
            deadline = expiry.table.next_deadline()
            if deadline is not None:
                expiry.arm(deadline)
        for binding in self.persistence.values():
            if binding.interval:
                nursery.start_soon(binding.write_behind)
        for link in self.links.values():
            nursery.start_soon(link.run)
        for name, link in self.links.items():
            config = self.tables[name].config
            await link.first_sync(config.redis_sync_timeout, config.redis_url)

    async def stop(self) -> None:
        for expiry in self._expiry:
            expiry.cancel()
        for name, binding in self.persistence.items():
            if self.tables[name].config.store_on_stop:
                count = await binding.store_all()
                log.info("htable %s: stored %d items to %s", name, count, binding.store.path)
        for link in self.links.values():
            await link.hand_over(STOP_FLUSH_TIMEOUT)

    # -- reload / store (RPC) ----------------------------------------------------------------
    async def reload(self, table: Table) -> None:
        name = table.name
        if name in self.links:
            if not await self.links[name].resync():
                raise RpcError(500, f"Reload failed: Redis ({table.config.redis_url}) did not "
                                    "answer; serving the last copy")
        elif name in self.persistence:
            await self.persistence[name].reload()
        elif name in self.static_files:
            path = self.static_files[name]
            try:
                rows = await trio.to_thread.run_sync(load_static, path)
            except ConfigError as exc:
                raise RpcError(500, f"Reload failed: {exc}") from None
            table.replace_all(rows)
        else:
            raise RpcError(500, f"No htable db_url: table '{name}' has no persist, load_file "
                                "or Redis backend to reload from")

    async def store(self, table: Table) -> None:
        binding = self.persistence.get(table.name)
        if binding is None:
            raise RpcError(500, f"No htable db_url: table '{table.name}' has no "
                                "persist = \"sqlite\"")
        await binding.store_all()

    def describe(self, table: Table) -> dict[str, Any]:
        """A table's htable.listTables entry (Kamailio's fields, plus backend and items)."""
        cfg = table.config
        return {"name": cfg.name, "dbtable": cfg.db_file if cfg.persist else cfg.load_file,
                "dbmode": int(bool(cfg.persist) and cfg.store_on_stop),
                "expire": cfg.autoexpire, "updateexpire": int(cfg.updateexpire),
                "size": cfg.slots, "dmqreplicate": 0, "backend": cfg.backend,
                "items": len(table)}


def _resolve(base_dir: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else base_dir / candidate


def _loading(cfg: TableConfig, load: Any) -> Any:
    try:
        return load()
    except Exception as exc:  # noqa: BLE001 - a broken file must name itself at start-up
        raise ConfigError([f"htable {cfg.name}: cannot load {cfg.db_file}: {exc}"]) from None
