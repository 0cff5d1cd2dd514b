"""``tls.list`` and ``tls.info`` (Kamailio's tls module RPC) over the router's connection table."""
from __future__ import annotations

import time
from typing import Any

from kamrouter.net import Endpoint
from kamrouter.rpc.registry import MethodRegistry
from kamrouter.transport.tcp import SECURE, TcpTransport


def register_tls_methods(registry: MethodRegistry, tcp: TcpTransport | None) -> None:
    def tls_list() -> list[dict[str, Any]]:
        """Open TLS connections: id, peer, local socket, age, idle time, protocol, cipher."""
        if tcp is None:
            return []
        now, clock = time.time(), tcp.clock()
        rows = []
        for conn in list(tcp.connections.values()):
            details = conn.tls_details()
            if details is None:
                continue
            rows.append({"id": conn.id, "peer": _hostport(conn.remote),
                         "local": _hostport(conn.local), "created": round(now - conn.created),
                         "timeout": max(0, round(tcp.config.connection_lifetime
                                                 - (clock - conn.last_activity))),
                         "version": details[0], "cipher": details[1], "state": "established"})
        return rows

    def tls_info() -> dict[str, int]:
        """TLS connection counts (wss: included): max_connections (shared with TCP) and
        opened_connections."""
        opened = 0 if tcp is None else sum(
            1 for remote in tcp.connections if remote.proto in SECURE)
        return {"max_connections": tcp.config.max_connections if tcp else 0,
                "opened_connections": opened}

    registry.register("tls.list", tls_list)
    registry.register("tls.info", tls_info)


def _hostport(endpoint: Endpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{endpoint.port}"
