"""Status answers of a router with worker processes, as one router's: the supervisor asks
every worker for the methods of :data:`MERGED` and merges their objects.

A number that is a worker's own (calls it asked the API about, connections it holds) is
added up; a "latest" value (``last_error``) is the one of the worker that set it last, by
the time it answers beside it (``last_error_at``, Unix seconds); everything else is worker
0's: limits from the config, and state every worker shares (a circuit breaker the state
bus keeps one, a cache it fills alike). A worker that is being restarted is left out, as
from the summed statistics (:mod:`kamrouter.core.worker_stats`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kamrouter.rpc.registry import RpcError


@dataclass(frozen=True)
class Merge:
    #: Keys added up over the workers.
    summed: frozenset[str]
    #: (value key, time key): the value of the worker whose time is the latest.
    latest: tuple[str, str] | None = None


MERGED: dict[str, Merge] = {
    "core.tcp_info": Merge(frozenset({"readers", "opened_connections",
                                      "opened_tls_connections", "write_queued_bytes"})),
    "api.status": Merge(frozenset({"requests", "answers", "timeouts", "errors", "fallbacks",
                                   "short_circuits"}), ("last_error", "last_error_at")),
    "auth.api_status": Merge(frozenset({"in_flight"}), ("last_error", "last_error_at")),
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def merge(method: str, answers: list[Any]) -> dict[str, Any]:
    """``answers`` (worker 0's first) of ``method`` as the one router's."""
    if not answers or not all(isinstance(answer, dict) for answer in answers):
        raise RpcError(500, f"a worker answered {method} with no object")
    spec = MERGED[method]
    total = dict(answers[0])
    for key in spec.summed & total.keys():
        total[key] = sum(answer[key] for answer in answers
                         if _number(answer.get(key)))
    if spec.latest is not None:
        value, at = spec.latest
        timed = [answer for answer in answers if _number(answer.get(at))]
        if timed:
            newest = max(timed, key=lambda answer: answer[at])
            total[value], total[at] = newest.get(value, ""), newest[at]
    return total
