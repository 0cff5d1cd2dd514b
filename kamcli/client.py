"""JSON-RPC 2.0 client on top of a :mod:`kamcli.transport`: requests built with ``json``,
replies checked, errors raised as :class:`~kamcli.errors.RpcFault` (exit 1) or
:class:`~kamcli.errors.Unreachable` (exit 3)."""
from __future__ import annotations

import itertools
import json
from typing import Any

from kamcli.errors import RpcFault, Unreachable
from kamcli.transport import Transport

Params = list[Any] | dict[str, Any]


def build_request(method: str, params: Params | tuple[()], request_id: int) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params:
        request["params"] = params
    return request


class RpcClient:
    def __init__(self, transport: Transport, where: str) -> None:
        self.transport = transport
        self.where = where
        self._ids = itertools.count(1)

    def call(self, method: str, params: Params | tuple[()] = ()) -> Any:
        request = build_request(method, params, next(self._ids))
        raw = self.transport.exchange(json.dumps(request, ensure_ascii=False).encode())
        try:
            reply = json.loads(raw)
        except ValueError:
            raise Unreachable(f"{self.where}: the reply to {method} is not JSON: "
                              f"{raw[:80]!r}") from None
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise Unreachable(f"{self.where}: the reply to {method} is not a JSON-RPC "
                              f"response: {raw[:80]!r}")
        error = reply.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise RpcFault(method, -32603, str(error))
            raise RpcFault(method, error.get("code", -32603), str(error.get("message", "")),
                           error.get("data"))
        if reply.get("id", request["id"]) != request["id"]:
            raise Unreachable(f"{self.where}: the reply to {method} carries id "
                              f"{reply.get('id')!r}, expected {request['id']}")
        return reply["result"]

    def close(self) -> None:
        self.transport.close()
