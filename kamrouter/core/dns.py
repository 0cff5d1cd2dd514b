"""Next-hop name resolution (A/AAAA) that never blocks the router.

IP literals resolve synchronously. Host names are looked up with trio's threaded
``getaddrinfo`` under a timeout and cached (positive and negative) for ``ttl`` seconds, so a
routing decision only parks on the first lookup of a name; requests for a name already being
looked up wait for that lookup instead of starting their own. Names come from the network,
so the cache is bounded (:data:`MAX_CACHED_NAMES`).
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from functools import lru_cache

import trio

#: Names cached at most; when full, expired entries go, and if none had, all of them.
MAX_CACHED_NAMES = 4096


@lru_cache(maxsize=4096)
def ip_literal(host: str) -> str | None:
    """``host`` without IPv6 brackets if it is an IP address, else None."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return None


class Resolver:
    """Cached asynchronous A/AAAA resolution."""

    def __init__(self, clock: Callable[[], float], *, hosts: dict[str, str] | None = None,
                 lookups: bool = True, ttl: float = 60.0, negative_ttl: float = 10.0,
                 timeout: float = 5.0) -> None:
        self.clock = clock
        #: Static names (``[core] hosts``), answered before any lookup.
        self.hosts = {name.lower(): address for name, address in (hosts or {}).items()}
        #: False: only IP literals and static names resolve (``[core] dns = false``).
        self.lookups = lookups
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.timeout = timeout
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._in_flight: dict[str, trio.Event] = {}

    def cached(self, host: str) -> tuple[bool, str | None]:
        """(known, address): known=False means a lookup is needed."""
        literal = ip_literal(host)
        if literal is not None:
            return True, literal
        name = host.lower()
        static = self.hosts.get(name)
        if static is not None or not self.lookups:
            return True, static
        entry = self._cache.get(name)
        if entry is not None and entry[0] > self.clock():
            return True, entry[1]
        return False, None

    async def resolve(self, host: str) -> str | None:
        """The first address of ``host`` (IPv4 preferred), or None when it does not resolve."""
        known, address = self.cached(host)
        if known:
            return address
        name = host.lower()
        in_flight = self._in_flight.get(name)
        if in_flight is not None:
            await in_flight.wait()
            return await self.resolve(host)  # cached now, unless that lookup was cancelled
        done = self._in_flight[name] = trio.Event()
        try:
            address = await self._lookup(host)
            self._remember(name, address)
        finally:
            del self._in_flight[name]
            done.set()
        return address

    async def _lookup(self, host: str) -> str | None:
        address = None
        with trio.move_on_after(self.timeout):
            try:
                infos = await trio.socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            except OSError:
                infos = []
            ordered = sorted(infos, key=lambda info: info[0] != socket.AF_INET)
            if ordered:
                address = str(ordered[0][4][0])
        return address

    def _remember(self, name: str, address: str | None) -> None:
        now = self.clock()
        if len(self._cache) >= MAX_CACHED_NAMES:
            self._cache = {key: entry for key, entry in self._cache.items() if entry[0] > now}
            if len(self._cache) >= MAX_CACHED_NAMES:
                self._cache.clear()
        self._cache[name] = (now + (self.ttl if address else self.negative_ttl), address)
