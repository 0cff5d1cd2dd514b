"""Test doubles shared by the unit tests: a fake clock, a stand-in router made of the real
registries and a real scheduler on that clock, and a JSON-RPC client that calls a method
registry in process (the same dispatch the control sockets use)."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kamrouter.core.settings import Settings
from kamrouter.net import Endpoint, OwnEndpoints
from kamrouter.rpc.dispatch import Dispatcher
from kamrouter.rpc.registry import MethodRegistry, RpcError
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class StandInRouter:
    """What modules and the control plane use of ``kamrouter.core.router.Router``: real
    registries and scheduler on a fake clock; events, probes (``send_request``) and
    transaction-end callbacks recorded."""

    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], float] = field(default_factory=FakeClock)
    stats: StatsRegistry = field(default_factory=StatsRegistry)
    rpc: MethodRegistry = field(default_factory=MethodRegistry)
    started_at: float = field(default_factory=time.time)
    sockets: list[Endpoint] = field(default_factory=lambda: [Endpoint("udp", "127.0.0.1", 5060)])
    own_endpoints: OwnEndpoints = field(default_factory=OwnEndpoints)
    modules: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    probes: list[tuple[str, Any]] = field(default_factory=list)
    transaction_end: list[Callable[[Any], None]] = field(default_factory=list)
    connections: set[Endpoint] = field(default_factory=set)
    #: As one of several worker processes: its index, and the other workers' methods.
    worker_index: int | None = None
    bus: Any = None
    workers: dict[int, MethodRegistry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.clock)

    def advance(self, seconds: float) -> None:
        """Move the clock and run the timers that became due, as the router's loop does."""
        assert isinstance(self.clock, FakeClock), "advance() needs the fake clock"
        self.clock.now += seconds
        self.scheduler.fire_due(self.clock.now)

    def emit(self, event: str, **data: Any) -> None:
        self.events.append((event, data))

    def send_request(self, method: str, ruri: str, **kwargs: Any) -> None:
        self.probes.append((ruri, kwargs["on_reply"]))

    def on_transaction_end(self, callback: Callable[[Any], None]) -> None:
        self.transaction_end.append(callback)

    def on_terminated(self, txn: Any) -> None:
        """tm's hook (a transaction layer may be built on this router): as the router does,
        run what the modules registered."""
        for callback in self.transaction_end:
            callback(txn)

    def module(self, name: str) -> Any:
        return self.modules[name]

    async def ask_worker(self, index: int, method: str, params: list[Any]) -> Any:
        """A method of ``workers[index]`` (RpcError as the router raises it)."""
        if index not in self.workers:
            raise RpcError(-32000, f"worker {index} not reachable")
        result = await RpcClient(self.workers[index])(method, *params)
        if isinstance(result, tuple) and result[:1] == ("error",):
            raise RpcError(result[1], result[2])
        return result

    def connected(self, dest: Endpoint) -> bool:
        """Connections the test opened (``connections``)."""
        return dest in self.connections


class RpcClient:
    """Calls ``registry``'s methods through JSON-RPC dispatch: the result, or
    ``("error", code, message)`` (``error_data`` keeps the error's ``data``)."""

    def __init__(self, registry: MethodRegistry) -> None:
        self._dispatcher = Dispatcher(registry)
        self.error_data: Any = None

    async def __call__(self, method: str, *params: Any) -> Any:
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        reply = json.loads(await self._dispatcher.handle(json.dumps(request).encode()))
        if "error" in reply:
            self.error_data = reply["error"].get("data")
            return ("error", reply["error"]["code"], reply["error"]["message"])
        return reply["result"]
