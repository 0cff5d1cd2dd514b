"""Next-hop resolution that never blocks the router: RFC 3263 targets and plain addresses.

Records are cached per (name, type) for their TTL (clamped to ``[dns] cache_min_ttl`` ..
``cache_max_ttl``), names that do not resolve for ``negative_ttl``; the cache is shared by all
calls and bounded, because names come from the network. Concurrent requests for a record
share one lookup. A routing decision asks :meth:`Resolver.cached_targets` first: when every
record it needs is cached, the answer comes at once with no await; otherwise it parks on
:meth:`Resolver.targets`.

Lookups go to the configured name servers with dnspython on trio, or, with no servers
configured, NAPTR/SRV to the system's name servers and A/AAAA through ``getaddrinfo`` (so
``/etc/hosts`` names resolve as the operator expects). IP literals and ``[core] hosts`` names
are answered without a lookup; ``[core] dns = false`` turns lookups off.
"""
from __future__ import annotations

import random
import socket
from collections.abc import Callable, Collection, Sequence
from typing import Any

import trio

from kamrouter.dns.literal import ip_literal
from kamrouter.dns.rfc3263 import Naptr, Query, RecordType, Srv, locate
from kamrouter.net import Endpoint

__all__ = ["Resolver", "ip_literal"]

#: (name, type) entries cached at most; when full, expired ones go, and if none had, all.
MAX_CACHED_RECORDS = 8192
#: TTL of answers from getaddrinfo, which gives none.
SYSTEM_TTL = 60.0

_Records = tuple[object, ...]


class _NotCached(Exception):
    """A record the synchronous path needs is not in the cache."""


class Resolver:
    """Cached asynchronous RFC 3263 and A/AAAA resolution."""

    def __init__(self, clock: Callable[[], float], *, hosts: dict[str, str] | None = None,
                 lookups: bool = True, servers: Sequence[tuple[str, int]] = (),
                 try_naptr: bool = True, srv: bool = True, srv_lb: bool = True,
                 min_ttl: float = 0.0, max_ttl: float = 86400.0, negative_ttl: float = 60.0,
                 timeout: float = 5.0, rng: random.Random | None = None) -> None:
        self.clock = clock
        #: Static names (``[core] hosts``), answered before any lookup.
        self.hosts = {name.lower(): address for name, address in (hosts or {}).items()}
        self.lookups = lookups
        self.try_naptr = try_naptr
        self.srv = srv
        self.rng = (rng or random.Random()) if srv_lb else None
        self.min_ttl, self.max_ttl, self.negative_ttl = min_ttl, max_ttl, negative_ttl
        self.timeout = timeout
        self._servers = list(servers)
        self._dns: Any = None  # dnspython's async resolver, made on first use
        self._cache: dict[tuple[str, str], tuple[float, _Records]] = {}
        self._in_flight: dict[tuple[str, str], trio.Event] = {}
        #: Counters for the stats.
        self.queries = 0
        self.failures = 0

    # -- plain addresses (a next hop with an explicit port or transport) ---------------------
    def cached(self, host: str) -> tuple[bool, str | None]:
        """(known, address): known=False means a lookup is needed."""
        try:
            found = self._cached_addresses(host)
        except _NotCached:
            return False, None
        return True, str(found[0]) if found else None

    async def resolve(self, host: str) -> str | None:
        """The first address of ``host`` (IPv4 preferred), or None when it does not resolve."""
        found = await self.records(host, "A") or await self.records(host, "AAAA")
        return str(found[0]) if found else None

    def _cached_addresses(self, host: str) -> _Records:
        return self._cached_records(host, "A") or self._cached_records(host, "AAAA")

    # -- RFC 3263 ---------------------------------------------------------------------------
    def wants_lookup_plan(self, query: Query) -> bool:
        """Whether RFC 3263 applies: a host name without an explicit port (IP literals and
        explicit ports need no NAPTR/SRV)."""
        return (query.port is None and self.srv and self.lookups
                and ip_literal(query.host) is None and query.host.lower() not in self.hosts)

    def cached_targets(self, query: Query, transports: Collection[str]) -> list[Endpoint] | None:
        """The targets of ``query`` when every record needed is cached, else None."""
        coro = locate(self._plan(query), self._cached_lookup, transports, self.rng, self.try_naptr)
        try:
            coro.send(None)
        except StopIteration as done:
            return list(done.value)
        except _NotCached:
            return None
        coro.close()  # the cached lookup never suspends; be safe if it ever does
        return None

    async def targets(self, query: Query, transports: Collection[str]) -> list[Endpoint]:
        """Every target of ``query``, in the order to try them (empty: does not resolve)."""
        return await locate(self._plan(query), self.records, transports, self.rng, self.try_naptr)

    def _plan(self, query: Query) -> Query:
        if not self.srv and query.port is None:
            return Query(query.host, query.secure, query.transport, 5061 if query.secure else 5060)
        return query

    async def _cached_lookup(self, name: str, rdtype: RecordType) -> _Records:
        return self._cached_records(name, rdtype)

    def _cached_records(self, name: str, rdtype: str) -> _Records:
        static = self._static(name, rdtype)
        if static is not None:
            return static
        entry = self._cache.get((name.lower(), rdtype))
        if entry is None or entry[0] <= self.clock():
            raise _NotCached
        return entry[1]

    def _static(self, name: str, rdtype: str) -> _Records | None:
        """Answers that need no lookup: IP literals, ``[core] hosts``, lookups turned off."""
        literal = ip_literal(name)
        if literal is not None:
            return (literal,) if (":" in literal) == (rdtype == "AAAA") else ()
        address = self.hosts.get(name.lower())
        if address is not None:
            return (address,) if (":" in address) == (rdtype == "AAAA") else ()
        return None if self.lookups else ()

    # -- lookups ----------------------------------------------------------------------------
    async def records(self, name: str, rdtype: RecordType) -> _Records:
        """The records of ``name``/``rdtype`` (empty when there are none), cached."""
        try:
            return self._cached_records(name, rdtype)
        except _NotCached:
            pass
        key = (name.lower(), rdtype)
        in_flight = self._in_flight.get(key)
        if in_flight is not None:
            await in_flight.wait()
            return await self.records(name, rdtype)  # cached now, unless it was cancelled
        done = self._in_flight[key] = trio.Event()
        try:
            found, ttl = await self._query(name, rdtype)
            self._remember(key, found, ttl)
        finally:
            del self._in_flight[key]
            done.set()
        return found

    async def _query(self, name: str, rdtype: RecordType) -> tuple[_Records, float]:
        self.queries += 1
        found: _Records = ()
        ttl = self.negative_ttl
        with trio.move_on_after(self.timeout):
            if rdtype in ("A", "AAAA") and not self._servers:
                found = await _getaddrinfo(name, rdtype)
                ttl = SYSTEM_TTL
            else:
                found, ttl = await self._dns_query(name, rdtype)
        if not found:
            self.failures += 1
            ttl = self.negative_ttl
        return found, min(max(ttl, self.min_ttl), self.max_ttl)

    async def _dns_query(self, name: str, rdtype: RecordType) -> tuple[_Records, float]:
        import dns.asyncresolver
        import dns.exception

        if self._dns is None:
            self._dns = _make_dns_resolver(self._servers, self.timeout)
        try:
            answer = await self._dns.resolve(name, rdtype, raise_on_no_answer=False,
                                             search=False)
        except dns.exception.DNSException:
            return (), self.negative_ttl
        rrset = answer.rrset
        if rrset is None:
            return (), self.negative_ttl
        return tuple(_convert(rdtype, rdata) for rdata in rrset), float(rrset.ttl)

    def _remember(self, key: tuple[str, str], found: _Records, ttl: float) -> None:
        now = self.clock()
        cache = self._cache
        if len(cache) >= MAX_CACHED_RECORDS and key not in cache:
            self._cache = cache = {k: e for k, e in cache.items() if e[0] > now}
            if len(cache) >= MAX_CACHED_RECORDS:
                cache.clear()
        cache[key] = (now + ttl, found)

    # -- operators (RPC dns.view / dns.delete_all) --------------------------------------------
    def view(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [{"name": name, "type": rdtype, "ttl": int(expires - now),
                 "records": [_describe(r) for r in found]}
                for (name, rdtype), (expires, found) in sorted(self._cache.items())
                if expires > now]

    def clear(self) -> int:
        count = len(self._cache)
        self._cache.clear()
        return count


def _make_dns_resolver(servers: Sequence[tuple[str, int]], timeout: float) -> Any:
    import dns.asyncresolver
    import dns.nameserver

    resolver = dns.asyncresolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                                for host, port in servers]
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


def _convert(rdtype: str, rdata: Any) -> object:
    if rdtype == "SRV":
        return Srv(rdata.priority, rdata.weight, rdata.port, rdata.target.to_text(True))
    if rdtype == "NAPTR":
        return Naptr(rdata.order, rdata.preference, rdata.flags.decode(errors="replace"),
                     rdata.service.decode(errors="replace"), rdata.replacement.to_text(True))
    return rdata.address


def _describe(record: object) -> str:
    if isinstance(record, Srv):
        return f"{record.priority} {record.weight} {record.port} {record.target}"
    if isinstance(record, Naptr):
        return (f"{record.order} {record.preference} \"{record.flags}\" \"{record.service}\" "
                f"{record.replacement}")
    return str(record)


async def _getaddrinfo(name: str, rdtype: str) -> _Records:
    family = socket.AF_INET6 if rdtype == "AAAA" else socket.AF_INET
    try:
        infos = await trio.socket.getaddrinfo(name, None, family=family, type=socket.SOCK_DGRAM)
    except OSError:
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))
