"""``ws.dump`` and ``ws.close`` (Kamailio's websocket module RPC) over the router's
connection table: the open WebSocket connections, and closing one of them."""
from __future__ import annotations

from typing import Any

from kamrouter.net import format_hostport
from kamrouter.rpc.registry import MethodRegistry, RpcError
from kamrouter.transport.tcp import WEBSOCKET, TcpTransport
from kamrouter.transport.ws import CLOSE_NORMAL


def register_ws_methods(registry: MethodRegistry, tcp: TcpTransport | None) -> None:
    def ws_dump() -> list[dict[str, Any]]:
        """Open WebSocket connections: id, peer, local socket, state, idle seconds, Origin,
        sub-protocol."""
        if tcp is None:
            return []
        now = tcp.clock()
        return [{"id": conn.id, "peer": format_hostport(conn.remote.host, conn.remote.port),
                 "local": f"{conn.local.proto}:{format_hostport(conn.local.host, conn.local.port)}",
                 "state": "open" if conn.websocket.open else "connecting/closing",
                 "idle": round(now - conn.last_activity), "origin": conn.websocket.origin or "",
                 "sub_protocol": "sip"}
                for conn in sorted(tcp.connections.values(), key=lambda c: c.id)
                if conn.websocket is not None and conn.remote.proto in WEBSOCKET]

    def ws_close(id: int) -> str:  # noqa: A002 - Kamailio's parameter name
        """Close WebSocket connection ``id`` (code 1000)."""
        conn = next((c for c in (tcp.connections.values() if tcp else ()) if c.id == id),
                    None)
        if conn is None or not conn.close_websocket(CLOSE_NORMAL):
            raise RpcError(404, f"no open WebSocket connection {id}")
        return "ok"

    registry.register("ws.dump", ws_dump)
    registry.register("ws.close", ws_close)
