"""The ``[[htable]]`` config section: one array element per table."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kamrouter.config import Range, range_problems
from kamrouter.redis_client import prefix_problems, url_problems

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass
class TableConfig:
    """One table. Defaults and meanings follow Kamailio's ``htable`` modparam where it has one."""

    name: str = ""
    #: log2 of the bucket count, as in Kamailio. Only the layout of ``htable.dump`` and
    #: ``htable.stats`` depends on it: it is *not* a limit on the number of items.
    size: int = 8
    #: Seconds an item lives after it is set (0: items never expire unless set with one).
    autoexpire: int = 0
    #: True: every update of an item restarts its autoexpire time; False: keep the deadline.
    updateexpire: bool = True
    #: Returned for missing keys instead of None; inc/dec create missing keys from it.
    initval: int | None = None
    #: "sqlite": load from ``db_file`` at start, write back on htable.store, at stop
    #: (``store_on_stop``) and the changed keys ``write_behind`` seconds after a change.
    persist: Literal["", "sqlite"] = ""
    db_file: str = "htable.sqlite"
    #: The loss window of a crash (kill -9, power): changes of the last ``write_behind``
    #: seconds. 0 writes only at stop and on htable.store (a crash loses every change).
    write_behind: float = 1.0
    store_on_stop: bool = True
    #: A static CSV (key,value[,type[,expires]]) or TOML (key = value) file loaded at start
    #: and on htable.reload.
    load_file: str = ""
    #: "redis": the table lives in Redis and every node serves reads from a coherent local copy.
    #: Redis is the source of truth: a node that (re)connects takes the table Redis has, so
    #: Redis must keep its data across its own restarts (appendonly yes, or replicas).
    backend: Literal["memory", "redis"] = "memory"
    #: redis://[user:pass@]host:port/db, rediss://..., unix:///path.sock?db=0,
    #: redis+cluster://host:port[,host:port...], redis+sentinel://host:port[,...]/service/db
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Redis keys are ``{<prefix>:<table>}:<key>``: one hash slot per table in a cluster.
    redis_prefix: str = "kamrouter:htable"
    #: Writes waiting for Redis (while it is slow or away); above this, new writes are dropped.
    redis_queue: int = 10000
    #: How long start-up waits for the first full sync from Redis before serving anyway.
    redis_sync_timeout: float = 5.0
    #: Redis came back without the table (restarted empty, flushed, an empty replica):
    #: "reseed" writes this node's copy back; "refuse" keeps serving the copy without
    #: syncing until ``htable.reload``. Never the silent wipe of every node's copy.
    redis_data_loss: Literal["reseed", "refuse"] = "reseed"

    @staticmethod
    def validate_all(tables: list[TableConfig]) -> list[str]:
        """Problems between the tables of one config: a name defined twice."""
        return [f"htable[{i}].name: {cfg.name!r} is defined twice"
                for i, cfg in enumerate(tables) if cfg.name in {c.name for c in tables[:i]}]

    @property
    def slots(self) -> int:
        return 1 << self.size

    def validate(self) -> list[str]:
        problems = []
        if not self.name:
            problems.append("name: missing (every [[htable]] needs a name)")
        elif not _NAME.fullmatch(self.name):
            problems.append(f"name: {self.name!r} may only contain letters, digits, '_', '.', '-'")
        problems += range_problems(self, TABLE_RANGES)
        if self.backend == "redis":
            if self.persist:
                problems.append("persist: not available with backend = \"redis\" "
                                "(Redis keeps the table)")
            if self.load_file:
                problems.append("load_file: not available with backend = \"redis\" "
                                "(Redis keeps the table)")
            problems += url_problems("redis_url", self.redis_url)
            problems += prefix_problems("redis_prefix", self.redis_prefix)
        if self.persist == "sqlite" and self.load_file:
            problems.append("load_file: choose either persist = \"sqlite\" or load_file")
        if self.load_file and not self.load_file.endswith((".csv", ".toml")):
            problems.append(f"load_file: {self.load_file!r} must end in .csv or .toml")
        return problems


TABLE_RANGES = {
    "size": Range(2, 31, "(log2 of the bucket count, not a maximum number of items)"),
    "autoexpire": Range(0, 10 * 365 * 86400, "s"),
    "write_behind": Range(0.01, 3600, "s", off=0),
    "redis_queue": Range(1, 10_000_000), "redis_sync_timeout": Range(0, 300, "s"),
}
