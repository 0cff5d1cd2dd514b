"""The routing decision of the reference controllers: longest-prefix match on the callee.

A table is a JSON object mapping a callee prefix to what kamrouter should do with the call:
a route document (rtjson) or a reply. The empty prefix matches every callee:

    {
      "+4930": {"routing": "serial",
                "routes": [{"uri": "sip:+4930@gw1.example.net", "fr_timer": 2000},
                           {"uri": "sip:+4930@gw2.example.net"}]},
      "+49":   {"routing": "parallel",
                "routes": [{"uri": "sip:desk@10.0.0.5"}, {"uri": "sip:mobile@10.0.0.6"}]},
      "":      {"reply": {"code": 404, "reason": "No Route"}}
    }
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NO_ROUTE = {"reply": {"code": 404, "reason": "No Route"}}


class PrefixTable:
    def __init__(self, entries: dict[str, dict[str, Any]]) -> None:
        # longest prefix first, so the first match is the best one
        self.entries = sorted(entries.items(), key=lambda item: len(item[0]), reverse=True)

    @classmethod
    def load(cls, path: str | Path) -> PrefixTable:
        return cls(json.loads(Path(path).read_text()))

    def route(self, event: dict[str, Any]) -> dict[str, Any]:
        callee = event.get("callee", "")
        for prefix, decision in self.entries:
            if callee.startswith(prefix):
                return decision
        return NO_ROUTE


def describe(event: dict[str, Any], decision: dict[str, Any]) -> str:
    """One line saying what was decided for a call, for ``--verbose``."""
    call = f"{event.get('caller')} -> {event.get('callee')}"
    if "reply" in decision:
        return f"{call}: reply {decision['reply']['code']} {decision['reply'].get('reason', '')}"
    uris = ", ".join(route.get("uri", "(R-URI)") for route in decision["routes"])
    return f"{call}: {decision['routing']} {uris}"
