"""The usrloc module: location tables in memory (optionally written through to SQLite, or
shared by several nodes through Redis; with several worker processes, shared by the state
bus in every db_mode: :mod:`.bus_link`), one scheduler timer sweeping expired bindings, ul.*
RPC methods and ``usrloc:`` statistics.

With ``db_mode = "redis"`` and workers, each worker sends its own changes to Redis and
publishes them on the bus too, so the other workers see them at once, Redis away or not;
what another worker changed while Redis was away is kept through the re-sync that follows
(:meth:`RedisLocation.hold`): that worker sends it when it reconnects, and its echo from
Redis, or the next one, is everyone's."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.usrloc.bus_link import UsrlocBus
from kamrouter.modules.usrloc.config import UsrlocConfig
from kamrouter.modules.usrloc.location import Binding, Location
from kamrouter.modules.usrloc.redis_store import RedisLocation
from kamrouter.modules.usrloc.rpc import UsrlocRpc
from kamrouter.modules.usrloc.store import LocationStore
from kamrouter.net import parse_socket
from kamrouter.redis_client import open_client
from kamrouter.redis_mirror import LinkStats
from kamrouter.timers import Timer

log = logging.getLogger("kamrouter.usrloc")

#: The table registrar's save()/lookup() use unless told otherwise.
DEFAULT_TABLE = "location"
#: How long stop() tries to hand queued changes to Redis.
STOP_FLUSH_TIMEOUT = 2.0


class UsrlocModule(Module):
    name = "usrloc"
    Config = UsrlocConfig

    def __init__(self, router: RouterServices, config: UsrlocConfig,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(router, config)
        self.clock = clock  # bindings expire in wall-clock time (stored across restarts)
        self.tables: dict[str, Location] = {}
        self.store: LocationStore | None = None
        if config.db_mode == "sqlite":
            base_dir = Path(getattr(getattr(router, "settings", None), "base_dir", None) or ".")
            path = Path(config.db_file)
            try:
                self.store = LocationStore(path if path.is_absolute() else base_dir / path)
            except Exception as exc:  # noqa: BLE001 - a broken file must name itself
                raise ConfigError([f"usrloc.db_file: cannot open {path}: {exc}"]) from None
        self.links: dict[str, RedisLocation] = {}
        self.shared: UsrlocBus | None = None
        #: With workers and SQLite, worker 0 alone writes the file (for all of them).
        self._writes_store = self.store is not None and not router.worker_index
        if router.bus is not None:
            self.shared = UsrlocBus(router.bus, self.tables, self.table)
            if self._writes_store:
                self.shared.on_applied = self._write
                self.shared.on_loaded = self._rewrite
            elif config.db_mode == "redis":
                self.shared.on_applied = self._hold_for_redis
        self._nursery: trio.Nursery | None = None
        self._timer: Timer | None = None
        self._own_sockets: dict[str, bool] = {}
        stats = router.stats
        self.expired = stats.counter("usrloc", "location-expires")
        self.write_errors = stats.counter("usrloc", "db-write-errors")
        stats.gauge("usrloc", "registered_users", self._count_aors)
        stats.gauge("usrloc", "location-users", self._count_aors)
        stats.gauge("usrloc", "location-contacts", self._count_contacts)
        self.table(DEFAULT_TABLE)
        UsrlocRpc(self.tables, 1 << config.hash_size, config.use_domain).register(router.rpc)

    def table(self, name: str) -> Location:
        """The location table ``name``, created (and loaded from SQLite) on first use."""
        table = self.tables.get(name)
        if table is None:
            table = self.tables[name] = Location(name, self.clock)
            write: Callable[[str, str, Binding | None], None] | None = None
            if self.store is not None:
                table.load(self.store.load(name, self.clock(), prune=self._writes_store))
                if self._writes_store:
                    write = partial(self._write, name)
            if self.config.db_mode == "redis":
                write = self._link(table).enqueue_change
            if self.shared is not None:
                self.shared.attach(table, write)
            elif write is not None:
                table.on_change = write
        return table

    def _link(self, table: Location) -> RedisLocation:
        cfg = self.config
        link = self.links[table.name] = RedisLocation(
            table, cfg.redis_prefix, cfg.redis_queue, partial(open_client, cfg.redis_url),
            LinkStats.named("usrloc", table.name, self.router.stats.counter))
        if self._nursery is not None:  # a table first used by a script after start-up
            self._nursery.start_soon(link.run)
        return link

    def _hold_for_redis(self, name: str, op: str, aor: str, binding: Binding | None) -> None:
        """Another worker's change, which that worker sends to Redis: kept here through a
        re-sync that may read Redis before it has it."""
        link = self.links.get(name)
        if link is not None and binding is not None:
            link.hold((aor, binding.ruid))

    def own_socket(self, socket: str) -> str | None:
        """``socket`` (a binding's) if this process listens on it, else None: a binding
        another node saved (shared through Redis) is sent from a socket of this node's."""
        if not socket:
            return None
        mine = self._own_sockets.get(socket)
        if mine is None:
            try:
                mine = parse_socket(socket) in self.router.own_endpoints
            except ValueError:
                mine = False
            self._own_sockets[socket] = mine
        return socket if mine else None

    def aor_of(self, user: str | None, host: str | None) -> str:
        """The AoR key of a URI's user and host (Kamailio use_domain)."""
        user = user or ""
        return f"{user}@{host}" if self.config.use_domain and host else user

    def _write(self, name: str, op: str, aor: str, binding: Binding | None) -> None:
        store = self.store
        assert store is not None
        try:
            store.write(name, op, aor, binding)
        except Exception:  # noqa: BLE001 - a full disk must not stop registrations
            self.write_errors.inc()
            log.exception("usrloc: cannot write %s of %s to %s", op, aor, store.path)

    def _rewrite(self, table: Location) -> None:
        """Write ``table`` anew (a dump from another worker replaced it)."""
        self._write(table.name, "flush", "", None)
        for aor, binding in table.rows():
            self._write(table.name, "put", aor, binding)

    def _count_aors(self) -> int:
        return sum(t.count_aors() for t in self.tables.values())

    def _count_contacts(self) -> int:
        return sum(t.count_contacts() for t in self.tables.values())

    # -- expiry: one timer for every table ----------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        self._arm()
        self._nursery = nursery
        for link in self.links.values():
            nursery.start_soon(link.run)
        for link in self.links.values():
            await link.first_sync(self.config.redis_sync_timeout, self.config.redis_url)

    def _arm(self) -> None:
        self._timer = self.router.scheduler.call_later(self.config.timer_interval, self.sweep)

    def sweep(self) -> None:
        # Every worker expires its copy of a binding; it is counted, and its event runs,
        # once for the router, in worker 0.
        emit = not self.router.worker_index
        for table in self.tables.values():
            for aor, binding in table.expire_due():
                if emit:
                    self.expired.inc()
                    self.router.emit("usrloc:contact-expired", table=table.name, aor=aor,
                                     contact=binding.contact, ruid=binding.ruid)
        self._arm()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.store is not None:
            self.store.close()
        for link in self.links.values():
            await link.hand_over(STOP_FLUSH_TIMEOUT)
