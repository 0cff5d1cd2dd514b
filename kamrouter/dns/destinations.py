"""From a next hop to the addresses to send to: RFC 3263 targets when the URI names a host
without a port, else the host's address; destinations on the blocklist skipped."""
from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from kamrouter.dns.blocklist import Blocklist
from kamrouter.dns.resolver import Resolver
from kamrouter.dns.rfc3263 import Query
from kamrouter.net import Endpoint


class Hop(Protocol):
    """A next hop (:class:`kamrouter.pipeline.addressing.NextHop`), read-only."""

    @property
    def proto(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def query(self) -> Query | None: ...


class Destinations:
    def __init__(self, resolver: Resolver, blocklist: Blocklist,
                 transports: Collection[str]) -> None:
        self.resolver = resolver
        self.blocklist = blocklist
        self.transports = tuple(transports)

    def cached(self, hop: Hop) -> list[Endpoint] | None:
        """The destinations of ``hop``, best first, when no lookup is needed (else None;
        empty: it does not resolve)."""
        query = hop.query
        if query is not None and self.resolver.wants_lookup_plan(query):
            targets = self.resolver.cached_targets(query, self.transports)
            return None if targets is None else self.blocklist.usable(targets)
        known, address = self.resolver.cached(hop.host)
        if not known:
            return None
        return [Endpoint(hop.proto, address, hop.port)] if address else []

    async def resolve(self, hop: Hop) -> list[Endpoint]:
        query = hop.query
        if query is not None and self.resolver.wants_lookup_plan(query):
            return self.blocklist.usable(await self.resolver.targets(query, self.transports))
        address = await self.resolver.resolve(hop.host)
        return [Endpoint(hop.proto, address, hop.port)] if address else []
