"""The supervisor's connection tables (kamrouter.core.worker_connections): every worker's
connections under router-wide ids, and ws.close taken back to the worker that holds one."""
from __future__ import annotations

from typing import Any

import pytest
import trio

from kamrouter.core.worker_connections import ConnectionTables
from kamrouter.rpc.registry import MethodRegistry, RpcError

TABLES = {0: [{"id": 1, "peer": "a"}, {"id": 2, "peer": "b"}], 1: [{"id": 1, "peer": "c"}]}


def tables() -> tuple[MethodRegistry, list[tuple[int, str, list[Any]]]]:
    closed: list[tuple[int, str, list[Any]]] = []

    async def ask_each(method: str, params: list[Any]) -> list[tuple[int, Any]]:
        if method == "tls.info":
            return [(0, {"max_connections": 2048, "opened_connections": 2}),
                    (1, {"max_connections": 2048, "opened_connections": 1})]
        return [(index, rows) for index, rows in TABLES.items()]

    async def ask_one(index: int, method: str, params: list[Any]) -> Any:
        closed.append((index, method, params))
        return "ok"

    registry = MethodRegistry()
    ConnectionTables(2, ask_each, ask_one).register(registry)
    return registry, closed


async def call(registry: MethodRegistry, method: str, *params: Any) -> Any:
    found = registry.get(method)
    assert found is not None
    result = found.func(*params)
    return await result if hasattr(result, "__await__") else result


def test_every_workers_connections_under_ids_that_lead_back_to_it() -> None:
    registry, closed = tables()
    rows = trio.run(call, registry, "ws.dump")
    assert [(row["id"], row["peer"]) for row in rows] == [(2, "a"), (4, "b"), (3, "c")]
    assert trio.run(call, registry, "ws.close", 3) == "ok"
    assert closed == [(1, "ws.close", [1])]
    assert trio.run(call, registry, "tls.info") == {"max_connections": 2048,
                                                    "opened_connections": 3}
    with pytest.raises(RpcError):
        trio.run(call, registry, "ws.close", 1)  # below any router-wide id
