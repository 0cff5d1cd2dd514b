"""RPC and stats of name resolution: Kamailio's ``dns.*`` and ``dst_blocklist.*`` methods."""
from __future__ import annotations

from typing import Any

from kamrouter.dns.blocklist import Blocklist
from kamrouter.dns.resolver import Resolver
from kamrouter.dns.rfc3263 import Query
from kamrouter.net import Endpoint, parse_socket
from kamrouter.rpc import MethodRegistry, RpcError
from kamrouter.stats import StatsRegistry

RECORD_TYPES = ("NAPTR", "SRV", "A", "AAAA")


def register_dns(registry: MethodRegistry, stats: StatsRegistry, resolver: Resolver,
                 blocklist: Blocklist, transports: tuple[str, ...]) -> None:
    # Each worker has its own resolver and blocklist: the work they did adds up; the
    # entries are mostly the operator's, added in every worker.
    stats.gauge("dns", "queries", lambda: resolver.queries, per_process=True)
    stats.gauge("dns", "failed_queries", lambda: resolver.failures, per_process=True)
    stats.gauge("dst_blocklist", "entries", lambda: len(blocklist))
    stats.gauge("dst_blocklist", "added", lambda: blocklist.added, per_process=True)
    stats.gauge("dst_blocklist", "skipped", lambda: blocklist.skipped, per_process=True)

    def dns_view() -> list[dict[str, Any]]:
        """The DNS cache: name, type, seconds left, records."""
        return resolver.view()

    async def dns_lookup(rdtype: str, name: str) -> dict[str, Any]:
        """Look ``name`` up (type NAPTR, SRV, A, AAAA, or SIP for the RFC 3263 targets of a
        sip: host) through the cache."""
        kind = rdtype.upper()
        if kind == "SIP":
            targets = await resolver.targets(Query(name), transports)
            return {"name": name, "type": "SIP", "targets": [str(t) for t in targets]}
        if kind not in RECORD_TYPES:
            raise RpcError(400, f"unknown record type {rdtype!r} (use {', '.join(RECORD_TYPES)}"
                                " or SIP)")
        found = await resolver.records(name, kind)  # type: ignore[arg-type]
        return {"name": name, "type": kind, "records": [str(r) for r in found]}

    def dns_delete_all() -> str:
        """Empty the DNS cache."""
        return f"Ok. {resolver.clear()} entries deleted."

    def blocklist_view() -> list[dict[str, Any]]:
        """Blocked destinations: proto, ip, port, seconds left, why."""
        return [{"proto": dest.proto, "ip": dest.host, "port": dest.port,
                 "expires": round(left), "reason": reason}
                for dest, left, reason in blocklist.view()]

    def blocklist_add(destination: str, expire: int = 0) -> str:
        """Block ``proto:ip:port`` for ``expire`` seconds (0: dst_blocklist.expire)."""
        dest = _endpoint(destination)
        blocklist.add(dest, "rpc", float(expire) if expire > 0 else None)
        return f"Ok. {dest} blocked."

    def blocklist_delete(destination: str) -> str:
        """Unblock one ``proto:ip:port``."""
        if not blocklist.remove(_endpoint(destination)):
            raise RpcError(404, f"{destination} is not blocked")
        return "Ok."

    def blocklist_delete_all() -> str:
        """Unblock every destination."""
        return f"Ok. {blocklist.clear()} entries deleted."

    registry.register("dns.view", dns_view)
    registry.register("dns.lookup", dns_lookup)
    registry.register("dns.delete_all", dns_delete_all)
    registry.register("dst_blocklist.view", blocklist_view)
    registry.register("dst_blocklist.add", blocklist_add)
    registry.register("dst_blocklist.delete", blocklist_delete)
    registry.register("dst_blocklist.delete_all", blocklist_delete_all)


def _endpoint(text: str) -> Endpoint:
    try:
        return parse_socket(text)
    except ValueError as exc:
        raise RpcError(400, f"expected proto:ip:port, {exc}") from None
