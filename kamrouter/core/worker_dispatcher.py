"""``dispatcher.list`` of a router with worker processes, as one router's.

States, latency and probe figures are the same in every worker (worker 0 probes and the
state bus takes its results, and the scripts' marks, to the others), and so is each
target's call load (``DLGLOAD``, algorithm 10's table is shared by the bus): worker 0's
answer has them. ``SELECTED`` counts the selections a worker made itself, so the
supervisor adds up every worker's, target by target (by set and position; a worker whose
list differs there, a reload on its way, adds nothing to it).
"""
from __future__ import annotations

from typing import Any

from kamrouter.core.worker_connections import AskEach
from kamrouter.rpc.registry import MethodRegistry

METHOD = "dispatcher.list"


def _targets(answer: Any) -> dict[tuple[Any, int], dict[str, Any]]:
    """(set id, position) → DEST of one worker's answer."""
    found = {}
    for record in answer.get("RECORDS", []) if isinstance(answer, dict) else []:
        dset = record.get("SET", {}) if isinstance(record, dict) else {}
        for position, target in enumerate(dset.get("TARGETS", [])):
            if isinstance(target, dict) and isinstance(target.get("DEST"), dict):
                found[(dset.get("ID"), position)] = target["DEST"]
    return found


class DispatcherListing:
    def __init__(self, ask_each: AskEach) -> None:
        self._ask_each = ask_each

    def register(self, registry: MethodRegistry) -> None:
        registry.register(METHOD, self.list)

    async def list(self, mode: str = "") -> Any:
        """Print all the destination sets: dispatcher.list [short|full] (SELECTED: every
        worker's selections added up)."""
        (_, first), *others = await self._ask_each(METHOD, [mode] if mode else [])
        mine = _targets(first)
        for _, answer in others:
            for key, dest in _targets(answer).items():
                own = mine.get(key)
                if own is None or own.get("URI") != dest.get("URI"):
                    continue
                runtime, theirs = own.get("RUNTIME"), dest.get("RUNTIME")
                if isinstance(runtime, dict) and isinstance(theirs, dict) \
                        and type(theirs.get("SELECTED")) is int:
                    runtime["SELECTED"] = runtime.get("SELECTED", 0) + theirs["SELECTED"]
        return first
