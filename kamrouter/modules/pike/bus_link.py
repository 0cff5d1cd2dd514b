"""pike shared between worker processes through the state bus (:mod:`kamrouter.modules.bus`),
so a router with several workers limits a source as one process would.

- Bans (channel ``pike``): a ban a worker decides (a flood it counted, a script's
  ``pike.ban``, ``pike.ban`` over RPC) or lifts is applied in every worker, as ``[ip,
  seconds, reason]`` (0 seconds: unban).
- Request counts (channel ``pike.hits``): a datagram's worker depends on its source port,
  so one address's ports spread over the workers; each worker adds up what it counts per
  source and sends the sums every :data:`FLUSH_INTERVAL` seconds (while it
  counts anything), ``[unit, [ip, hits, ip, hits, ...]]``, and adds the others' to its
  own: the limit holds for the router, and ``pike.list`` in any worker shows the router's
  counts. Per request that is one dict update; per worker and interval one message. A
  worker that bans a source sends its sums first, so the ban arrives with the counts that
  caused it. A source's requests during a ban are not sent (they change nothing), nor
  are counts older than the previous unit.

A source spread over workers can thus exceed the limit by what it sends in one interval
before the ban; a starting worker loads the bans and counts of a running one.
"""
from __future__ import annotations

import math
from typing import Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.permissions.address import parse_ip
from kamrouter.modules.pike.table import PikeTable, Source
from kamrouter.timers import Scheduler, Timer

CHANNEL = "pike"
HITS_CHANNEL = "pike.hits"
#: The longest ban (as the RPC method allows), and reason, a message may carry.
MAX_SECONDS = 30 * 86400
MAX_REASON = 256
#: Longest address text (IPv6 with an IPv4 tail is 45).
MAX_IP = 64
#: Seconds between two messages of counts (at most) from one worker.
FLUSH_INTERVAL = 0.1
#: Sources per message of counts (well within a bus datagram with IPv6 addresses).
SOURCES_PER_MESSAGE = 1000


class PikeBus:
    def __init__(self, bus: StateBus, table: PikeTable, scheduler: Scheduler) -> None:
        self.table = table
        self._bus = bus
        self._scheduler = scheduler
        self._pending: dict[str, int] = {}
        self._unit = 0
        self._timer: Timer | None = None
        table.on_ban = self._ban
        table.on_hit = self._count
        bus.register(CHANNEL, self)
        bus.register(HITS_CHANNEL, _Hits(self))

    # -- bans ---------------------------------------------------------------------------------
    def _ban(self, ip: str, seconds: float, reason: str) -> None:
        if seconds:
            self.flush()
        else:  # unbanned: its counts are forgotten everywhere
            self._pending.pop(ip, None)
        self._bus.publish(CHANNEL, [ip, seconds, reason])

    def apply(self, payload: Any) -> None:
        ip, seconds, reason = _ban(payload)
        if seconds:
            self.table.apply_ban(ip, seconds, reason)
        else:
            self._pending.pop(ip, None)
            self.table.apply_unban(ip)

    def dump(self) -> list[list[Any]]:
        self.table.expire()
        now = self.table.clock()
        return [[ip, math.ceil(ban.until - now), ban.reason]
                for ip, ban in self.table.bans.items()]

    def load(self, data: Any) -> None:
        bans = [_ban(entry) for entry in data]
        self.table.bans.clear()
        for ip, seconds, reason in bans:
            if seconds:
                self.table.apply_ban(ip, seconds, reason)

    # -- counts -------------------------------------------------------------------------------
    def _count(self, ip: str, unit: int) -> None:
        if unit != self._unit:
            self.flush()
            self._unit = unit
        pending = self._pending
        pending[ip] = pending.get(ip, 0) + 1
        if self._timer is None:
            self._timer = self._scheduler.call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Send the counts since the last flush to the other workers."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        flat = [item for entry in self._pending.items() for item in entry]
        self._pending = {}
        step = 2 * SOURCES_PER_MESSAGE
        for start in range(0, len(flat), step):
            self._bus.publish(HITS_CHANNEL, [self._unit, flat[start:start + step]])


class _Hits:
    """The ``pike.hits`` channel: the others' counts, and every source's for a dump."""

    def __init__(self, link: PikeBus) -> None:
        self.table = link.table

    def apply(self, payload: Any) -> None:
        unit, flat = payload
        if type(unit) is not int or not isinstance(flat, list) or len(flat) % 2:
            raise ValueError(f"not pike counts: {payload!r}"[:200])
        for index in range(0, len(flat), 2):
            ip, hits = flat[index], flat[index + 1]
            # A key only (no parse per source): the bus is the router's own.
            if not (isinstance(ip, str) and len(ip) <= MAX_IP and type(hits) is int
                    and hits > 0):
                raise ValueError(f"not a count: {[ip, hits]!r}"[:200])
            self.table.apply_hits(ip, unit, hits)

    def dump(self) -> list[list[Any]]:
        self.table.expire()
        return [[ip, s.unit, s.prev, s.curr, s.last_seen] for ip, s in self.table.sources.items()]

    def load(self, data: Any) -> None:
        sources = {}
        for ip, unit, prev, curr, last_seen in data:
            if not (isinstance(ip, str) and len(ip) <= MAX_IP
                    and all(type(v) is int for v in (unit, prev, curr))):
                raise ValueError(f"not a source: {[ip, unit, prev, curr]!r}"[:200])
            source = sources[ip] = Source(unit, float(last_seen))
            source.prev, source.curr = prev, curr
        self.table.sources.clear()
        self.table.sources.update(sources)


def _ban(entry: Any) -> tuple[str, float, str]:
    ip, seconds, reason = entry
    if not (isinstance(ip, str) and parse_ip(ip) is not None and isinstance(reason, str)
            and len(reason) <= MAX_REASON and type(seconds) in (int, float)
            and 0 <= seconds <= MAX_SECONDS):
        raise ValueError(f"not a ban: {entry!r}"[:200])
    return ip, seconds, reason
