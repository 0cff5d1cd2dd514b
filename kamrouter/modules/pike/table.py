"""Per-source request rates and the ban list (sans-IO, driven by a clock).

Kamailio's pike semantics, per source IP: more than ``reqs_density_per_unit`` requests in
one ``sampling_time_unit`` (seconds) is a flood; a source is forgotten ``remove_latency``
seconds after its last request. Kamailio keeps a flooding source blocked only while it
keeps exceeding the limit, and its stock config bans it for 300 s in an htable: here the
ban list is part of the module (``ban_time``; 0 gives Kamailio's bare behaviour).

Counting is a fixed window per source (the current and the previous unit, Kamailio's
``leaf_hits_curr``/``leaf_hits_prev``), updated when the source sends: no timer per source.
Both tables are LRU-ordered dicts bounded by ``max_sources``: a flood from many addresses
evicts the sources idle the longest, never grows memory without limit, and a source that
keeps flooding stays at the recent end.
"""
from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("kamrouter.pike")

OK, BLOCKED, NEW_FLOOD = 1, -1, -2  # pike_check_req's return codes


class Source:
    __slots__ = ("unit", "prev", "curr", "last_seen")

    def __init__(self, unit: int, now: float) -> None:
        self.unit = unit
        self.prev = 0
        self.curr = 0
        self.last_seen = now

    def hits(self, unit: int) -> tuple[int, int]:
        """(previous unit, current unit) as seen from ``unit``."""
        if unit == self.unit:
            return self.prev, self.curr
        return (self.curr, 0) if unit == self.unit + 1 else (0, 0)


@dataclass
class Ban:
    until: float
    reason: str


class PikeTable:
    def __init__(self, sampling_time_unit: float, density: int, remove_latency: float,
                 ban_time: float, max_sources: int, clock: Callable[[], float]) -> None:
        self.unit_length = sampling_time_unit
        self.density = density
        self.remove_latency = remove_latency
        self.ban_time = ban_time
        self.max_sources = max_sources
        self.clock = clock
        self.sources: OrderedDict[str, Source] = OrderedDict()
        self.bans: OrderedDict[str, Ban] = OrderedDict()
        self.blocked = 0   # requests refused
        self.detected = 0  # floods detected (new bans)
        self.evicted = 0   # sources dropped to stay within max_sources
        #: Told of every local ban (seconds, reason) and unban (0, ""): shared by workers.
        self.on_ban: Callable[[str, float, str], None] | None = None
        #: Told of every request counted here from a source not banned, with its unit:
        #: the other workers add it up (:mod:`.bus_link`).
        self.on_hit: Callable[[str, int], None] | None = None

    def _source(self, ip: str, now: float, unit: int) -> Source:
        """``ip``'s counts, as of ``unit``, made most recent (a new one if unknown)."""
        sources = self.sources
        source = sources.get(ip)
        if source is None:
            self._forget_idle(now)
            if len(sources) >= self.max_sources:
                sources.popitem(last=False)
                self.evicted += 1
            source = sources[ip] = Source(unit, now)
        else:
            sources.move_to_end(ip)
            if unit != source.unit:
                source.prev, source.curr = source.hits(unit)
                source.unit = unit
        source.last_seen = now
        return source

    def check(self, ip: str) -> int:
        """Count one request from ``ip``: OK, BLOCKED or NEW_FLOOD (first detection)."""
        now = self.clock()
        unit = int(now // self.unit_length)
        source = self._source(ip, now, unit)
        source.curr += 1
        if self.bans:
            ban = self.bans.get(ip)
            if ban is not None:
                if ban.until > now:
                    self.blocked += 1
                    return BLOCKED
                del self.bans[ip]
                log.info("pike: ban of %s (%s) expired", ip, ban.reason)
        if self.on_hit is not None:
            self.on_hit(ip, unit)
        if source.curr <= self.density:
            return OK
        self.blocked += 1
        if self.ban_time <= 0 and source.curr > self.density + 1:
            return BLOCKED  # no ban list: blocked while it exceeds, detected once
        self.detected += 1
        log.warning("pike: %s sent more than %d requests in %g s: blocked%s", ip,
                    self.density, self.unit_length,
                    f" for {self.ban_time:g} s" if self.ban_time > 0 else "")
        if self.ban_time > 0:
            self.ban(ip, self.ban_time, "flood")
        return NEW_FLOOD

    def ban(self, ip: str, seconds: float, reason: str) -> None:
        self.apply_ban(ip, seconds, reason)
        if self.on_ban is not None:
            self.on_ban(ip, seconds, reason)

    def unban(self, ip: str) -> bool:
        """Lift a ban and forget the source's counts (else its next request bans it again)."""
        banned = self.apply_unban(ip)
        if self.on_ban is not None:
            self.on_ban(ip, 0, "")
        return banned

    # -- from elsewhere (another worker): not reported through on_ban or on_hit ---------------
    def apply_hits(self, ip: str, unit: int, hits: int) -> None:
        """Add ``hits`` requests another worker counted from ``ip`` in ``unit``."""
        now = self.clock()
        current = int(now // self.unit_length)
        if unit == current:
            self._source(ip, now, current).curr += hits
        elif unit == current - 1:
            self._source(ip, now, current).prev += hits

    def apply_ban(self, ip: str, seconds: float, reason: str) -> None:
        bans = self.bans
        bans.pop(ip, None)
        if len(bans) >= self.max_sources:
            bans.popitem(last=False)
        bans[ip] = Ban(self.clock() + seconds, reason)

    def apply_unban(self, ip: str) -> bool:
        self.sources.pop(ip, None)
        ban = self.bans.pop(ip, None)
        return ban is not None and ban.until > self.clock()

    def banned(self, ip: str) -> bool:
        ban = self.bans.get(ip)
        return ban is not None and ban.until > self.clock()

    def expire(self) -> None:
        """Drop idle sources and ended bans (the listing and the gauges call it)."""
        now = self.clock()
        self._forget_idle(now)
        for ip in [ip for ip, ban in self.bans.items() if ban.until <= now]:
            del self.bans[ip]

    def _forget_idle(self, now: float) -> None:
        sources = self.sources
        horizon = now - self.remove_latency
        while sources:
            ip, source = next(iter(sources.items()))
            if source.last_seen > horizon:
                return
            del sources[ip]

    def rows(self, status_filter: str = "HOT") -> list[dict[str, Any]]:
        """pike.top rows (Kamailio's fields, plus ``ban_expires`` and ``reason``), the
        busiest first; filter HOT (flooding or banned), WARM (above half the limit) or ALL."""
        self.expire()
        now = self.clock()
        unit = int(now // self.unit_length)
        rows = []
        for ip in dict.fromkeys([*self.sources, *self.bans]):
            source = self.sources.get(ip)
            prev, curr = source.hits(unit) if source else (0, 0)
            ban = self.bans.get(ip)
            ban_left = math.ceil(ban.until - now) if ban else 0
            kept = math.ceil(source.last_seen + self.remove_latency - now) if source else 0
            if ban or curr > self.density:
                status = "HOT"
            elif max(prev, curr) * 2 > self.density:
                status = "WARM"
            else:
                status = ""
            if status_filter != "ALL" and status != status_filter:
                continue
            rows.append({"ip_addr": ip, "leaf_hits_prev": prev, "leaf_hits_curr": curr,
                         "expires": max(kept, ban_left), "status": status,
                         "ban_expires": ban_left, "reason": ban.reason if ban else ""})
        rows.sort(key=lambda r: (-(r["leaf_hits_prev"] + r["leaf_hits_curr"]),  # type: ignore[operator]
                                 -r["leaf_hits_curr"]))  # type: ignore[operator]
        return rows
