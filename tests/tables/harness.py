"""dialplan and mtree modules on a stand-in router (real registries, fake clock), their RPC
methods called through JSON-RPC as a transport would."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from htable.conftest import StandInRouter

from kamrouter.config import build_section
from kamrouter.core.settings import Settings
from kamrouter.modules.dialplan import DialplanModule
from kamrouter.modules.dialplan.config import DialplanConfig
from kamrouter.modules.mtree import MtreeModule
from kamrouter.modules.mtree.config import TreeConfig
from kamrouter.rpc.dispatch import Dispatcher as JsonRpc


class OnRouter:
    def __init__(self, tmp_path: Path, module: Any) -> None:
        self.router = StandInRouter(Settings(base_dir=tmp_path))
        self.module = module(self.router)
        self.api = self.module.api()
        self._jsonrpc = JsonRpc(self.router.rpc)

    async def rpc(self, method: str, *params: Any) -> Any:
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        reply = json.loads(await self._jsonrpc.handle(json.dumps(request).encode()))
        if "error" in reply:
            return ("error", reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    def stat(self, group: str, name: str) -> int | float:
        stat = self.router.stats.get(group, name)
        assert stat is not None, f"no stat {group}:{name}"
        return stat.value


def _config(cls: type, raw: dict[str, Any], where: str) -> Any:
    problems: list[str] = []
    config = build_section(cls, raw, where, problems)
    assert not problems, problems
    return config


def dialplan_on(tmp_path: Path, **raw: Any) -> OnRouter:
    config = _config(DialplanConfig, raw, "dialplan")
    return OnRouter(tmp_path, lambda router: DialplanModule(router, config))


def mtree_on(tmp_path: Path, *raw: dict[str, Any]) -> OnRouter:
    configs = [_config(TreeConfig, item, f"mtree[{i}]") for i, item in enumerate(raw)]
    return OnRouter(tmp_path, lambda router: MtreeModule(router, configs))
