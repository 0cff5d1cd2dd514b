"""The ``[usrloc]`` config section (names and defaults after Kamailio's usrloc modparams)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kamrouter.config import Range, range_problems
from kamrouter.redis_client import prefix_problems, url_problems


@dataclass
class UsrlocConfig:
    #: "memory": bindings are lost at restart (Kamailio db_mode 0); "sqlite": every change is
    #: written through to ``db_file`` before the reply is sent and loaded at start (db_mode 1).
    #: "redis": the tables live in Redis (``redis_url``), shared by every router node using
    #: it: a phone registered through one node is found by a lookup on any other. Each node
    #: serves lookups from its own copy, kept current through Redis pub/sub. Write policy:
    #: write-behind — a change is applied locally and answered (200 OK) at once, and sent to
    #: Redis by one task within about a round trip. A crash (kill -9) loses the changes not
    #: yet sent (normally the last milliseconds; everything since Redis went away if it is
    #: away): the phones re-register. While Redis is away, registrations keep working on
    #: this node (queued up to ``redis_queue``, counted in ``usrloc:<table>-redis_errors``
    #: and ``-redis_dropped``); when it is back the queue is sent and the table read again.
    #: Expiry compares absolute wall-clock times: keep the nodes' clocks in sync (NTP).
    db_mode: Literal["memory", "sqlite", "redis"] = "memory"
    db_file: str = "location.sqlite"
    #: Required with db_mode "redis": redis://[user:pass@]host:port/db, rediss://...,
    #: unix:///path.sock?db=0, redis+cluster://host:port[,host:port...],
    #: redis+sentinel://host:port[,...]/service/db.
    redis_url: str = ""
    #: Each table is a Redis hash per AoR, ``{<prefix>:<table>}:<aor>`` (one cluster slot
    #: per table), expiring with its latest binding.
    redis_prefix: str = "kamrouter:usrloc"
    #: Changes waiting for Redis (while it is slow or away); above this, new ones are not
    #: queued and the table is read again from Redis once it answers.
    redis_queue: int = 100_000
    #: How long start-up waits for the first full read from Redis before serving anyway.
    redis_sync_timeout: float = 5.0
    #: Seconds between sweeps that delete expired bindings (and emit
    #: ``usrloc:contact-expired``). Expired bindings are never visible in between. With
    #: db_mode "redis" every node sweeps; a node emits the event for the expired bindings
    #: it still had (no other node's sweep had removed them yet).
    timer_interval: float = 60.0
    #: False: the AoR is the user part only (Kamailio use_domain 0); True: user@domain.
    use_domain: bool = False
    #: How a Contact without +sip.instance matches a stored binding (Kamailio
    #: matching_mode): 0 contact URI, 1 contact URI and Call-ID, 2 contact URI and Path.
    matching_mode: int = 0
    #: log2 of the slot count shown by ul.dump (layout only, not a limit).
    hash_size: int = 10

    def validate(self) -> list[str]:
        problems = range_problems(self, RANGES)
        if self.db_mode == "redis":
            problems += url_problems("redis_url", self.redis_url)
            problems += prefix_problems("redis_prefix", self.redis_prefix)
            problems += range_problems(self, REDIS_RANGES)
        elif self.redis_url:
            problems.append(f"redis_url: only used with db_mode = \"redis\" (db_mode is "
                            f"{self.db_mode!r})")
        return problems


RANGES = {"timer_interval": Range(0.1, 86_400, "s"), "matching_mode": Range(0, 2),
          "hash_size": Range(1, 20)}
REDIS_RANGES = {"redis_queue": Range(1, 10_000_000),
                "redis_sync_timeout": Range(0, 300, "s")}
