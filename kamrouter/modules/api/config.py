"""The ``[api]`` section and its ``on_error`` fallback."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from kamrouter.config import Range, range_problems
from kamrouter.sip import sip_uri_problem

Transport = Literal["http", "evapi", "jsonrpc", "sip"]

_METHOD = re.compile(r"[A-Z]+")


@dataclass(frozen=True, slots=True)
class ReplyFallback:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class DispatcherFallback:
    setid: int
    alg: int


Fallback = ReplyFallback | DispatcherFallback


def parse_on_error(text: str) -> Fallback:
    """``"reply 503 [reason]"`` or ``"dispatcher <set> [alg]"`` (alg default 4, round robin)."""
    words = text.split()
    if len(words) >= 2 and words[0] == "reply" and words[1].isdigit() and (
            300 <= int(words[1]) <= 699):
        return ReplyFallback(int(words[1]), " ".join(words[2:]) or "Service Unavailable")
    if 2 <= len(words) <= 3 and words[0] == "dispatcher" and all(w.isdigit() for w in words[1:]):
        return DispatcherFallback(int(words[1]), int(words[2]) if len(words) == 3 else 4)
    raise ValueError(f"expected 'reply <300-699> [reason]' or 'dispatcher <set> [alg]', "
                     f"got {text!r}")


@dataclass
class ApiConfig:
    #: How the routing API is asked: HTTP POST of the event (http), the evapi socket
    #: (evapi), a JSON-RPC 2.0 call over HTTP (jsonrpc) or a SIP redirect server (sip).
    transport: Transport = "http"
    #: http/jsonrpc: the controller's URL; sip: the redirect server (``sip:host:port``).
    url: str = ""
    #: jsonrpc: the method called with the event as named params.
    rpc_method: str = "route"
    #: Seconds to wait for an answer before on_error applies.
    timeout: float = 2.0
    #: Methods of new (out-of-dialog) requests routed by the API; others go to their R-URI.
    methods: list[str] = field(default_factory=lambda: ["INVITE"])
    #: Headers copied into the event's ``headers`` object when present.
    headers: list[str] = field(default_factory=list)
    #: What to do when the API cannot answer: ``reply <code> [reason]`` or
    #: ``dispatcher <set> [alg]`` (needs the dispatcher module).
    on_error: str = "reply 503 Service Unavailable"
    #: Reply codes (regex over the code, as tm.check_status) that move a serial document on
    #: to its next route. Default: every failure, local 408 timeouts included.
    failover_codes: str = "[3-6][0-9][0-9]"
    #: Consecutive failures (timeouts, 5xx) that open the circuit; a refused connection
    #: or no connected evapi client opens it at once.
    breaker_threshold: int = 3
    #: Seconds an open circuit waits before one call probes the API again.
    breaker_retry: float = 2.0
    #: Record-Route new calls, so that their in-dialog requests come through this router.
    record_route: bool = True

    def validate(self) -> list[str]:
        problems = []
        if self.transport in ("http", "jsonrpc") and not self.url.startswith(("http://",
                                                                              "https://")):
            problems.append(f"url: transport {self.transport!r} needs an http:// or https:// "
                            f"URL, got {self.url!r}")
        problem = sip_uri_problem(self.url) if self.transport == "sip" else None
        if problem is not None:
            problems.append(f"url: transport 'sip' needs the redirect server: {problem}")
        for i, method in enumerate(self.methods):
            if not _METHOD.fullmatch(method):
                problems.append(f"methods[{i}]: expected an upper-case SIP method, got {method!r}")
        try:
            parse_on_error(self.on_error)
        except ValueError as exc:
            problems.append(f"on_error: {exc}")
        try:
            re.compile(self.failover_codes)
        except re.error as exc:
            problems.append(f"failover_codes: not a regular expression: {exc}")
        return problems + range_problems(self, {
            "timeout": Range(0.01, 300, "s"), "breaker_threshold": Range(1, 1000),
            "breaker_retry": Range(0.01, 3600, "s")})
