"""JSON-RPC calls to a router's control socket (Unix stream socket, one request a line)."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


class RpcFailed(AssertionError):
    """The router answered with a JSON-RPC error; ``error`` is its error object."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error}")
        self.error = error


def rpc_call(socket_path: str | Path, method: str, *params: Any, timeout: float = 20) -> Any:
    """Call ``method`` and return its result; :class:`RpcFailed` for an error answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        sock.sendall(json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                                 "id": 1}).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    answer = json.loads(reply)
    if "error" in answer:
        raise RpcFailed(method, answer["error"])
    return answer["result"]
