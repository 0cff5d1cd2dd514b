"""The ``[dns]`` and ``[dst_blocklist]`` config sections (Kamailio's ``dns_*`` and
``dst_blocklist_*`` core parameters, without the prefix)."""
from __future__ import annotations

from dataclasses import dataclass, field

from kamrouter.config import Range, range_problems
from kamrouter.dns.literal import ip_literal

DNS_RANGES = {
    "failover_max": Range(0, 32),
    "cache_min_ttl": Range(0, 7 * 86400, "s"),
    "cache_max_ttl": Range(0, 7 * 86400, "s"),
    "negative_ttl": Range(0, 86400, "s"),
    "timeout": Range(0.1, 60, "s"),
}
BLOCKLIST_RANGES = {
    "expire": Range(1, 86400, "s"),
    "max_entries": Range(16, 1_000_000),
}



def parse_server(text: str) -> tuple[str, int]:
    """``"127.0.0.1"``, ``"127.0.0.1:5353"`` or ``"[::1]:5353"`` → (address, port)."""
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected an address with an optional port, got {text!r}")
    if ip_literal(host) is None:
        raise ValueError(f"expected an IP address (name servers are not looked up), got {text!r}")
    return ip_literal(host) or host, int(port)


@dataclass
class DnsConfig:
    #: Name servers as ``host[:port]``; empty: the system's (``/etc/resolv.conf``, and
    #: ``getaddrinfo`` for A/AAAA so ``/etc/hosts`` names still resolve).
    servers: list[str] = field(default_factory=list)
    #: RFC 3263 NAPTR lookups for URIs with neither port nor transport (Kamailio dns_try_naptr).
    try_naptr: bool = True
    #: SRV lookups for URIs without a port (a name with no SRV records falls back to A/AAAA).
    srv: bool = True
    #: Weighted random order within an SRV priority (Kamailio dns_srv_lb); false: by weight.
    srv_lb: bool = True
    #: A branch that fails (timeout, send error, 503) is retried on the name's next target
    #: before the failure route runs (Kamailio use_dns_failover), at most ``failover_max`` times.
    failover: bool = True
    failover_max: int = 4
    #: Bounds applied to record TTLs in the cache, seconds (Kamailio dns_cache_min/max_ttl).
    cache_min_ttl: int = 0
    cache_max_ttl: int = 86400
    #: Seconds a name that did not resolve is remembered as such.
    negative_ttl: int = 60
    #: Seconds one lookup may take (all servers and retries).
    timeout: float = 5.0

    def validate(self) -> list[str]:
        problems = []
        for i, server in enumerate(self.servers):
            try:
                parse_server(server)
            except ValueError as exc:
                problems.append(f"servers[{i}]: {exc}")
        if self.cache_min_ttl > self.cache_max_ttl:
            problems.append(f"cache_min_ttl: must not exceed cache_max_ttl "
                            f"({self.cache_max_ttl}), got {self.cache_min_ttl}")
        return problems + range_problems(self, DNS_RANGES)


@dataclass
class BlocklistConfig:
    #: Skip destinations that recently failed (timeout, send error; 503 if ``on_503``).
    enabled: bool = True
    #: Seconds a destination stays blocked (Kamailio dst_blocklist_expire).
    expire: int = 60
    #: Entries kept at most; the oldest go first when full.
    max_entries: int = 4096
    #: Also block a destination that answered 503 without Retry-After.
    on_503: bool = False

    def validate(self) -> list[str]:
        return range_problems(self, BLOCKLIST_RANGES)
