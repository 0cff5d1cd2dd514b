"""The connection tables of a router with worker processes, as one router's.

Each worker holds the TCP, TLS and WebSocket connections it accepted or opened and numbers
them from 1. The supervisor's ``core.tcp_list``, ``tls.list`` and ``ws.dump`` list every
worker's, each connection under a router-wide id (its worker's id times the number of
workers, plus the worker's index), which ``ws.close`` takes back to that worker;
``tls.info`` adds up the open connections.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kamrouter.rpc.registry import MethodRegistry, RpcError

#: Calls ``method(params)`` on every ready worker: [(worker index, answer), ...].
AskEach = Callable[[str, list[Any]], Awaitable[list[tuple[int, Any]]]]
#: Calls ``method(params)`` on worker ``index``.
AskOne = Callable[[int, str, list[Any]], Awaitable[Any]]

LISTS = ("core.tcp_list", "tls.list", "ws.dump")


class ConnectionTables:
    def __init__(self, workers: int, ask_each: AskEach, ask_one: AskOne) -> None:
        self._workers = workers
        self._ask_each = ask_each
        self._ask_one = ask_one

    def register(self, registry: MethodRegistry) -> None:
        for method in LISTS:
            registry.register(method, self._lister(method))
        registry.register("tls.info", self.tls_info)
        registry.register("ws.close", self.ws_close)

    def _lister(self, method: str) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        async def every_workers() -> list[dict[str, Any]]:
            rows = []
            for index, answer in await self._ask_each(method, []):
                for row in answer if isinstance(answer, list) else []:
                    if isinstance(row, dict) and isinstance(row.get("id"), int):
                        rows.append({**row, "id": row["id"] * self._workers + index})
            return rows
        every_workers.__doc__ = (f"Returns {method} of every worker, each connection under a "
                                 "router-wide id (its worker's id x workers + worker index).")
        return every_workers

    async def tls_info(self) -> dict[str, int]:
        """TLS connection counts of all workers together (wss: included): max_connections
        (per worker, shared with TCP) and opened_connections."""
        answers = [answer for _, answer in await self._ask_each("tls.info", [])
                   if isinstance(answer, dict)]
        return {"max_connections": int(answers[0]["max_connections"]) if answers else 0,
                "opened_connections": sum(int(a.get("opened_connections", 0))
                                          for a in answers)}

    async def ws_close(self, id: int) -> Any:  # noqa: A002 - Kamailio's parameter name
        """Close WebSocket connection ``id`` (a router-wide id from ws.dump; code 1000)."""
        if not isinstance(id, int) or isinstance(id, bool) or id < self._workers:
            raise RpcError(404, f"no open WebSocket connection {id}")
        return await self._ask_one(id % self._workers, "ws.close", [id // self._workers])
