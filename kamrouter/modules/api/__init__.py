"""Built-in API routing: ``[routing] mode = "api"`` routes every new call as an external
routing API (the controller) decides, with no routing script to write.

For each new request of ``[api] methods`` the router sends the event document
(:mod:`.event`) over the configured transport and applies the answer: a route document
(rtjson: serial failover / parallel forking, per-route timers and headers) or
``{"reply": {"code": ..., "reason": ...}}``. In-dialog requests follow Record-Route without
asking. When the API cannot answer (timeout, refused, malformed answer) ``on_error`` applies:
a reply (default 503) or a dispatcher set. A circuit breaker (:mod:`.breaker`) makes a dead
controller cost nothing per call: a refused connection opens it at once, and calls fall back
immediately until a probe finds the API back.

The module provides the routing mode ``api`` (``routing_script``: :data:`ROUTES_SCRIPT`,
``routes.py`` here, runs instead of an operator script) and declares what it uses
(``requires``): ``rtjson``, and ``evapi`` or ``http_client`` for its transport; the loader
loads them (default config unless they have a section) and starts them first.

Stats ``api:requests``, ``answers``, ``timeouts``, ``errors``, ``fallbacks``,
``short_circuits`` (calls not sent because the circuit was open), ``refused_json_limit``
(answers past the JSON limits, also counted in errors), ``drops_internal_error`` (a bug
met while asking or reading the answer: logged, on_error applied) and the answer latency
histogram ``latency_le_<N>ms`` (cumulative, as Prometheus buckets) / ``latency_le_inf``.
RPC ``api.status`` (with workers, the supervisor adds up the counters and shows the latest
``last_error`` of any worker: :mod:`kamrouter.core.worker_status`).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import trio

from kamrouter.config import ConfigError
from kamrouter.guard import InputGuard
from kamrouter.modules.api.breaker import BreakerBus, CircuitBreaker
from kamrouter.modules.api.config import ApiConfig, DispatcherFallback, parse_on_error
from kamrouter.modules.api.controllers import (
    CircuitOpen,
    Controller,
    ControllerFailure,
    EvapiController,
    HttpController,
    JsonRpcController,
    SipRedirectController,
    ask_through,
)
from kamrouter.modules.api.decision import Decision, fallback_decision, interpret
from kamrouter.modules.api.event import build_event
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.rtjson import RouteDocumentError

__all__ = ["ROUTES_SCRIPT", "ApiConfig", "ApiModule", "ApiScriptApi", "Decision"]

log = logging.getLogger("kamrouter.api")

#: The routing script of the routing mode ``api`` (``routing.mode = "api"``).
ROUTES_SCRIPT = str(Path(__file__).resolve().with_name("routes.py"))

#: Upper bounds (ms) of the answer-latency histogram buckets.
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class ApiScriptApi:
    """``api`` in the API routing script: ask the routing API about a call."""

    def __init__(self, module: ApiModule) -> None:
        self._module = module
        config = module.config
        self.methods = frozenset(config.methods)
        self.failover_codes = config.failover_codes
        self.record_route = config.record_route

    async def decide(self, msg: Any) -> Decision:
        """The API's decision for this call; never raises (on_error's decision instead)."""
        return await self._module.decide(msg)


class ApiModule(Module):
    name = "api"
    Config = ApiConfig
    routing_script = ROUTES_SCRIPT

    @classmethod
    def requires(cls, config: ApiConfig) -> tuple[str, ...]:
        transport = {"evapi": ("evapi",), "sip": ()}.get(config.transport, ("http_client",))
        return ("rtjson", *transport)

    def __init__(self, router: RouterServices, config: ApiConfig) -> None:
        super().__init__(router, config)
        self.fallback = parse_on_error(config.on_error)
        if isinstance(self.fallback, DispatcherFallback):
            settings = router.settings
            if "dispatcher" not in (*settings.modules, *settings.core.load_modules):
                raise ConfigError(["api.on_error: 'dispatcher ...' needs the dispatcher "
                                   "module: add a [dispatcher] section"])
        self.breaker = CircuitBreaker(config.breaker_threshold, config.breaker_retry,
                                      router.clock)
        if router.bus is not None:  # several workers: one breaker
            BreakerBus(router.bus, "api_breaker", self.breaker)
        self.controller: Controller | None = None
        self.last_error = ""
        #: When last_error was set (Unix seconds, 0: never): the supervisor of workers
        #: shows the latest worker's.
        self.last_error_at = 0.0
        counter = router.stats.counter
        self.requests = counter("api", "requests")
        self.answers = counter("api", "answers")
        self.timeouts = counter("api", "timeouts")
        self.errors = counter("api", "errors")
        self.fallbacks = counter("api", "fallbacks")
        self.short_circuits = counter("api", "short_circuits")
        self.refused_json = counter("api", "refused_json_limit")
        self.guard = InputGuard("api", router.stats, log)
        self.latency = [(bound / 1000, counter("api", f"latency_le_{bound}ms"))
                        for bound in LATENCY_BUCKETS_MS]
        self.latency_inf = counter("api", "latency_le_inf")
        router.rpc.register("api.status", self.rpc_status)
        self._api = ApiScriptApi(self)

    def api(self) -> ApiScriptApi:
        return self._api

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        self.controller = self._make_controller()
        log.info("api routing via %s %s, on_error %r", self.config.transport,
                 self.controller.target, self.config.on_error)

    def _make_controller(self) -> Controller:
        """The controller of the transport, on the public API of the module it requires."""
        config = self.config
        if config.transport == "sip":
            return SipRedirectController(self.router, config.url)
        if config.transport == "evapi":
            return EvapiController(self.router.module("evapi").api())  # type: ignore[arg-type]
        http = self.router.module("http_client").api()
        if config.transport == "jsonrpc":
            return JsonRpcController(http, config.url, config.rpc_method)  # type: ignore[arg-type]
        return HttpController(http, config.url)  # type: ignore[arg-type]

    # -- deciding --------------------------------------------------------------------------
    async def decide(self, msg: Any) -> Decision:
        self.requests.value += 1
        assert self.controller is not None, "the api module was not started"
        started = self.router.clock()
        try:
            answer = await ask_through(self.breaker, self.controller, msg,
                                       build_event(msg, self.config.headers),
                                       self.config.timeout)
        except CircuitOpen:
            self.short_circuits.value += 1
            return self._fall_back(msg, "circuit open", quiet=True)
        except ControllerFailure as exc:
            (self.timeouts if exc.kind == "timeout" else self.errors).value += 1
            if exc.kind == "refused":
                self.refused_json.value += 1
            return self._fall_back(msg, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug here must not lose the call
            self.guard.failed(f"asking {self.controller.target}", exc)
            self.errors.value += 1
            return self._fall_back(msg, f"internal error: {exc}")
        self._observe(self.router.clock() - started)
        try:
            decision = interpret(answer)
        except RouteDocumentError as exc:
            self.errors.value += 1
            return self._fall_back(msg, f"unusable answer: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug reading the answer must not either
            self.guard.failed(f"the answer of {self.controller.target}", exc)
            self.errors.value += 1
            return self._fall_back(msg, f"internal error reading the answer: {exc}")
        self.answers.value += 1
        return decision

    def _fall_back(self, msg: Any, why: str, quiet: bool = False) -> Decision:
        self.fallbacks.value += 1
        if not quiet:
            self.last_error, self.last_error_at = why, round(time.time(), 3)
            log.warning("api: call %s: %s; applying on_error %r", msg.call_id, why,
                        self.config.on_error)
        return fallback_decision(self.fallback)

    def _observe(self, seconds: float) -> None:
        for bound, counter in self.latency:
            if seconds <= bound:
                counter.value += 1
        self.latency_inf.value += 1

    # -- RPC -------------------------------------------------------------------------------
    def rpc_status(self) -> dict[str, Any]:
        """Routing API health: transport, target, circuit state, last error and counters."""
        breaker = self.breaker
        return {
            "transport": self.config.transport,
            "target": self.controller.target if self.controller else "",
            "state": breaker.state,
            "consecutive_failures": breaker.failures,
            "retry_in": round(breaker.retry_in(), 3),
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "on_error": self.config.on_error,
            "requests": self.requests.value,
            "answers": self.answers.value,
            "timeouts": self.timeouts.value,
            "errors": self.errors.value,
            "fallbacks": self.fallbacks.value,
            "short_circuits": self.short_circuits.value,
        }
