"""Stand-ins for htable unit tests: a fake clock and a router with real registries and a
real scheduler driven by that clock."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kamrouter.config import build_section
from kamrouter.core.settings import Settings
from kamrouter.modules.htable import HtableModule
from kamrouter.modules.htable.config import TableConfig
from kamrouter.rpc.dispatch import Dispatcher as JsonRpc
from kamrouter.rpc.registry import MethodRegistry
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class StandInRouter:
    settings: Settings
    clock: Clock = field(default_factory=Clock)
    stats: StatsRegistry = field(default_factory=StatsRegistry)
    rpc: MethodRegistry = field(default_factory=MethodRegistry)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.clock)

    def emit(self, event: str, **data: Any) -> None:
        self.events.append((event, data))

    def advance(self, seconds: float) -> None:
        """Move the clock and run the timers that became due, as the router's loop does."""
        self.clock.now += seconds
        self.scheduler.fire_due(self.clock.now)


def tables(*raw: dict[str, Any]) -> list[TableConfig]:
    """Validated table configs, as the router builds them from [[htable]] sections."""
    problems: list[str] = []
    configs = [build_section(TableConfig, item, f"htable[{i}]", problems)
               for i, item in enumerate(raw)]
    assert not problems, problems
    return configs


class Htable:
    """The module on a stand-in router, with its RPC methods called through JSON-RPC."""

    def __init__(self, tmp_path: Path, *raw: dict[str, Any]) -> None:
        self.router = StandInRouter(Settings(base_dir=tmp_path))
        self.module = HtableModule(self.router, tables(*raw))
        self.api = self.module.api()
        self._jsonrpc = JsonRpc(self.router.rpc)
        #: ``data`` of the last error reply (the details of -32602 Invalid params).
        self.error_data: Any = None

    async def rpc(self, method: str, *params: Any) -> Any:
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        reply = json.loads(await self._jsonrpc.handle(json.dumps(request).encode()))
        if "error" in reply:
            self.error_data = reply["error"].get("data")
            return ("error", reply["error"]["code"], reply["error"]["message"])
        return reply["result"]
