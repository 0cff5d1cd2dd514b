"""dialplan.* RPC methods with Kamailio's names, params, result shapes and messages.

``dialplan.translate dpid input`` → ``{"Output": "...", "Attributes": "..."}``;
``dialplan.dump dpid`` → ``{"DPID": 1, "ENTRIES": [{"ENTRY": {"PRIO", "MATCHOP",
"MATCHEXP", "MATCHLEN", "SUBSTEXP", "REPLEXP", "ATTRS"}}, ...]}`` in evaluation order;
``dialplan.reload`` → ``{}``. Errors are Kamailio's 500s ("Dialplan ID not matched",
"No translation", "Empty input parameter", "ongoing reload"); a failed reload says why
(file and line) and keeps the rules in use. Beyond Kamailio: ``dialplan.list`` gives the
dpids with their rule counts.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kamrouter.modules.dialplan.api import DialplanApi
from kamrouter.modules.dialplan.rules import Dialplans, translate
from kamrouter.rpc.registry import MethodRegistry, RpcError


class DialplanRpc:
    def __init__(self, api: DialplanApi, current: Callable[[], Dialplans],
                 reload: Callable[[], Awaitable[None]]) -> None:
        self._api = api
        self._current = current
        self._reload = reload

    def register(self, registry: MethodRegistry) -> None:
        for name in ("translate", "dump", "reload", "list"):
            registry.register(f"dialplan.{name}", getattr(self, name))

    def translate(self, dpid: int, input: str) -> dict[str, str]:  # noqa: A002 - Kamailio's name
        """Perform dialplan translation: the output of dialplan DPID for INPUT and the
        matching rule's attributes."""
        plan = self._current().get(dpid)
        if plan is None:
            raise RpcError(500, "Dialplan ID not matched")
        if not input:
            raise RpcError(500, "Empty input parameter")
        result = translate(plan, input, self._api.max_length)  # not counted as call traffic
        if result is None:
            raise RpcError(500, "No translation")
        return {"Output": result.output, "Attributes": result.attrs}

    def dump(self, dpid: int) -> dict[str, Any]:
        """Dump dialplan content: the rules of dialplan DPID in the order they are tried."""
        plan = self._current().get(dpid)
        if plan is None:
            raise RpcError(500, "Dialplan ID not matched")
        return {"DPID": dpid, "ENTRIES": [{"ENTRY": rule.dump()} for rule in plan.rules]}

    async def reload(self) -> dict[str, Any]:
        """Reload dialplan rules from the rules file (the rules in use stay when it is bad)."""
        await self._reload()
        return {}

    def list(self) -> list[dict[str, int]]:
        """The dialplan ids and how many rules each has."""
        return [{"DPID": dpid, "RULES": len(plan.rules)}
                for dpid, plan in self._current().plans.items()]
