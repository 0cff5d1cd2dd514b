"""What to do with a new call: the controller's answer read into a :class:`Decision`.

An answer is either a route document (rtjson, see :mod:`kamrouter.modules.rtjson.document`)
or ``{"reply": {"code": 404, "reason": "Not Found"}}`` to answer the caller directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kamrouter.modules.api.config import DispatcherFallback, ReplyFallback
from kamrouter.modules.rtjson import RouteDocument, RouteDocumentError, parse_document


@dataclass(frozen=True, slots=True)
class Decision:
    """Exactly one of ``document``, ``reply`` and ``dispatcher`` is set."""

    document: RouteDocument | None = None
    reply: ReplyFallback | None = None
    dispatcher: DispatcherFallback | None = None
    #: True when on_error chose it (the API gave no usable answer).
    fallback: bool = False


def interpret(answer: dict[str, Any]) -> Decision:
    """Read a controller answer; RouteDocumentError names every bad field."""
    if "reply" in answer:
        reply = answer["reply"]
        code = reply.get("code") if isinstance(reply, dict) else None
        reason = reply.get("reason", "") if isinstance(reply, dict) else None
        if not isinstance(code, int) or isinstance(code, bool) or not 300 <= code <= 699:
            raise RouteDocumentError([f"reply.code: expected integer 300-699, got {code!r}"])
        if not isinstance(reason, str) or "\r" in reason or "\n" in reason:
            raise RouteDocumentError(["reply.reason: expected a one-line string"])
        return Decision(reply=ReplyFallback(code, reason or ""))
    return Decision(document=parse_document(answer))


def fallback_decision(fallback: ReplyFallback | DispatcherFallback) -> Decision:
    if isinstance(fallback, ReplyFallback):
        return Decision(reply=fallback, fallback=True)
    return Decision(dispatcher=fallback, fallback=True)
