"""RFC 3263 §4: which DNS lookups locate a SIP server, and in which order its targets are tried.

Pure functions, no I/O: :func:`locate` is driven by a ``lookup(name, rdtype)`` coroutine that
returns parsed records (the resolver supplies one that queries DNS through its cache; tests a
dictionary), and :func:`order_srv` applies RFC 2782's priority order and weighted random
selection with an injectable random source.

The procedure, for a URI whose host is a name:

- transport given (``;transport=``), port given: A/AAAA of the host, that port;
- transport given, no port: SRV ``_sip._udp`` / ``_sip._tcp`` / ``_sips._tcp`` (TLS) of the
  host; no SRV records: A/AAAA with the transport's default port;
- no transport, port given: UDP (TLS for ``sips:``), A/AAAA;
- neither: NAPTR of the host, keeping the services this router can send over, ordered by
  order then preference, each followed to its SRV name; no usable NAPTR: SRV for each
  transport in turn (UDP, TCP, TLS for ``sip:``; TLS for ``sips:``); none: A/AAAA, UDP (TLS), 5060
  (5061).
"""
from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from kamrouter.net import Endpoint

RecordType = Literal["NAPTR", "SRV", "A", "AAAA"]

#: NAPTR service field → transport (RFC 3263 §4.1, RFC 7118 §8 for WebSocket).
NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls",
                  "SIP+D2W": "ws", "SIPS+D2W": "wss"}
#: Transport → SRV owner-name prefix.
SRV_PREFIX = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp.",
              "ws": "_sip._ws.", "wss": "_sips._ws."}
SECURE_TRANSPORTS = frozenset({"tls", "wss"})
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True, slots=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Query:
    """What to locate: a URI's host with what the URI said of transport and port."""

    host: str
    secure: bool = False  # sips: URI
    transport: str | None = None  # ;transport= (lower case), None when absent
    port: int | None = None  # explicit port, None when absent


Lookup = Callable[[str, RecordType], Awaitable[Sequence[object]]]


def order_srv(records: Sequence[Srv], rng: random.Random | None = None) -> list[Srv]:
    """RFC 2782: ascending priority; within a priority, weighted random order (records of
    weight 0 have a small chance, placed first before the draw as the RFC says). With
    ``rng=None`` the order within a priority is by weight, heaviest first (no balancing)."""
    ordered: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        if rng is None:
            ordered.extend(sorted((r for r in records if r.priority == priority),
                                  key=lambda r: -r.weight))
            continue
        draw = rng.random
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight != 0)
        while group:
            total = sum(r.weight for r in group)
            if total == 0:
                ordered.extend(group)
                break
            threshold = draw() * total
            running = 0
            for i, record in enumerate(group):
                running += record.weight
                if running >= threshold and (record.weight or running > threshold):
                    ordered.append(group.pop(i))
                    break
            else:  # float rounding left the threshold past the sum
                ordered.append(group.pop())
    return ordered


async def locate(query: Query, lookup: Lookup, transports: Collection[str],
                 rng: random.Random | None = None, naptr: bool = True) -> list[Endpoint]:
    """Every target for ``query`` in the order to try them, over the ``transports`` this
    router can send on; empty when the name does not resolve. ``naptr=False`` skips the
    NAPTR step (straight to the SRV fallback order); ``rng`` as in :func:`order_srv`."""
    # A sips: URI keeps only secure services; a sip: URI keeps them all (RFC 3263 §4.1).
    usable = [t for t in transports if t in SECURE_TRANSPORTS or not query.secure]
    if query.transport is not None:
        if query.port is not None:
            return await _addresses(query.host, query.transport, query.port, lookup)
        return await _srv_or_addresses(query.host, query.transport, lookup, rng)
    if query.port is not None:
        transport = "tls" if query.secure else "udp"
        return await _addresses(query.host, transport, query.port, lookup)
    services = await _naptr_services(query.host, usable, lookup) if naptr else []
    for transport, srv_name in services:
        targets = await _srv_targets(srv_name, transport, lookup, rng)
        if targets:
            return targets
    for transport in _fallback_order(usable, query.secure):
        targets = await _srv_targets(SRV_PREFIX[transport] + query.host, transport, lookup, rng)
        if targets:
            return targets
    transport = "tls" if query.secure else "udp"
    return await _addresses(query.host, transport, DEFAULT_PORTS[transport], lookup)


def _fallback_order(usable: Sequence[str], secure: bool) -> list[str]:
    preferred = ("tls",) if secure else ("udp", "tcp", "tls")
    return [t for t in preferred if t in usable]


async def _naptr_services(host: str, usable: Sequence[str],
                          lookup: Lookup) -> list[tuple[str, str]]:
    """(transport, SRV name) of the host's NAPTR records we can use, best first."""
    records = [r for r in await lookup(host, "NAPTR") if isinstance(r, Naptr)]
    chosen: list[tuple[str, str]] = []
    for record in sorted(records, key=lambda r: (r.order, r.preference)):
        transport = NAPTR_SERVICES.get(record.service.upper())
        if transport is not None and transport in usable and record.flags.lower() == "s" and record.replacement:
            chosen.append((transport, record.replacement.rstrip(".")))
    return chosen


async def _srv_or_addresses(host: str, transport: str, lookup: Lookup,
                            rng: random.Random | None) -> list[Endpoint]:
    prefix = SRV_PREFIX.get(transport)
    if prefix is not None:
        targets = await _srv_targets(prefix + host, transport, lookup, rng)
        if targets:
            return targets
    return await _addresses(host, transport, DEFAULT_PORTS.get(transport, 5060), lookup)


async def _srv_targets(name: str, transport: str, lookup: Lookup,
                       rng: random.Random | None) -> list[Endpoint]:
    records = [r for r in await lookup(name, "SRV") if isinstance(r, Srv)]
    targets: list[Endpoint] = []
    for record in order_srv(records, rng):
        if record.target in ("", "."):  # "service decidedly not available" (RFC 2782)
            continue
        targets.extend(await _addresses(record.target.rstrip("."), transport, record.port,
                                        lookup))
    return list(dict.fromkeys(targets))


async def _addresses(host: str, transport: str, port: int, lookup: Lookup) -> list[Endpoint]:
    """IPv4 addresses first, then IPv6 (the router's UDP sockets are usually IPv4)."""
    found = [*await lookup(host, "A"), *await lookup(host, "AAAA")]
    return [Endpoint(transport, str(address), port) for address in found]
