"""HA1 values from the routing API (``[auth] credentials = "api"``), cached.

The API is asked as API routing asks it (:mod:`kamrouter.modules.api.controllers`, over
http_client, behind the same kind of circuit breaker): HTTP POST of
``{"username": ..., "realm": ...}``, or a JSON-RPC call of ``api_rpc_method`` with those
named params. The answer (the HTTP body or the JSON-RPC result) is
``{"ha1": <32 hex digits>, "ha1_sha256": <64 hex digits>}`` — either may be missing or
empty, that algorithm then fails — or ``{}`` for an unknown user. Anything else (a clear
``password``, a malformed value, a non-2xx status, a timeout) is a failure: the request is
answered ``api_on_error``, or served a stale HA1 within ``api_stale_ttl``.

Answers are cached (:mod:`.cache`; with workers, one cache for all: :mod:`.cache_bus`);
while one lookup of a (username, realm) is in flight, other requests for it in the same
worker wait for that one instead of asking again (two workers that miss at once both ask).
HA1 values are never logged.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import trio

from kamrouter.guard import InputGuard
from kamrouter.modules.api.breaker import BreakerBus, CircuitBreaker
from kamrouter.modules.api.controllers import (
    CircuitOpen,
    Controller,
    ControllerFailure,
    HttpController,
    JsonRpcController,
    ask_through,
)
from kamrouter.modules.auth.cache import Entry, Ha1Cache, Key
from kamrouter.modules.auth.cache_bus import CacheBus
from kamrouter.modules.auth.config import AuthConfig
from kamrouter.modules.auth.digest import HA1_LENGTH, is_hex
from kamrouter.modules.auth.subscribers import Subscriber
from kamrouter.modules.base import RouterServices
from kamrouter.modules.http_client import HttpClientApi

log = logging.getLogger("kamrouter.auth")


class LookupFailed(Exception):
    """The API could not tell (its kind: timeout, unavailable, error, refused, circuit open)."""


class _InFlight:
    """One lookup being asked, and what it found, for the requests waiting on it."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.outcome: Subscriber | None | LookupFailed = LookupFailed("cancelled")


def subscriber_from(answer: dict[str, Any], key: Key) -> Subscriber | None:
    """The HA1 values of an answer; None for an unknown user. ControllerFailure when the
    answer is not made of HA1 values."""
    if "password" in answer:
        raise ControllerFailure("error", "a clear password in the answer (only HA1 values "
                                "are accepted)", "answered")
    values = []
    for name, algorithm in (("ha1", "MD5"), ("ha1_sha256", "SHA-256")):
        value = answer.get(name) or ""
        if value and not (isinstance(value, str) and is_hex(value.lower(),
                                                            HA1_LENGTH[algorithm])):
            raise ControllerFailure("error", f"{name} is not {HA1_LENGTH[algorithm]} hex "
                                    "digits", "answered")
        values.append(value.lower())
    if not any(values):
        return None
    return Subscriber(key[0], key[1], values[0], "", values[1])


class ApiCredentials:
    def __init__(self, router: RouterServices, config: AuthConfig) -> None:
        self.router = router
        self.config = config
        self.cache = Ha1Cache(config.api_cache_ttl, config.api_negative_ttl,
                              config.api_cache_size, config.api_negative_cache_size)
        self.breaker = CircuitBreaker(config.api_breaker_threshold, config.api_breaker_retry,
                                      router.clock)
        #: Several workers: one breaker, and one cache.
        self.cache_bus: CacheBus | None = None
        if router.bus is not None:
            BreakerBus(router.bus, "auth_api_breaker", self.breaker)
            self.cache_bus = CacheBus(router.bus, self.cache)
        self.controller: Controller | None = None
        self.last_error = ""
        self.last_error_at = 0.0  # Unix seconds (the latest worker's is the router's)
        self._in_flight: dict[Key, _InFlight] = {}
        counter = router.stats.counter
        self.queries = counter("auth", "api_queries")
        self.hits = counter("auth", "api_cache_hits")
        self.misses = counter("auth", "api_cache_misses")
        self.timeouts = counter("auth", "api_timeouts")
        self.errors = counter("auth", "api_errors")
        self.short_circuits = counter("auth", "api_short_circuits")
        self.stale_served = counter("auth", "api_stale_served")
        self.guard = InputGuard("auth", router.stats, log)

    def start(self, http: HttpClientApi) -> None:
        config = self.config
        self.controller = (JsonRpcController(http, config.api_url, config.api_rpc_method)
                           if config.api_transport == "jsonrpc"
                           else HttpController(http, config.api_url))

    def cached(self, key: Key) -> Entry | None:
        """The cached answer for ``key`` (counted as a hit or a miss)."""
        entry = self.cache.get(key, self.router.clock())
        (self.misses if entry is None else self.hits).value += 1
        return entry

    async def lookup(self, key: Key) -> Subscriber | None:
        """Ask the API about ``key`` (or wait for the lookup already asking); None: unknown
        user. Raises LookupFailed when it could not tell and no stale value may serve."""
        flight = self._in_flight.get(key)
        if flight is not None:
            await flight.done.wait()
        else:
            flight = self._in_flight[key] = _InFlight()
            try:
                flight.outcome = await self._ask(key)
            finally:
                del self._in_flight[key]
                flight.done.set()
        if not isinstance(flight.outcome, LookupFailed):
            return flight.outcome
        stale = (self.cache.stale(key, self.router.clock(), self.config.api_stale_ttl)
                 if self.config.api_stale_ttl else None)
        if stale is None:
            raise flight.outcome
        self.stale_served.value += 1
        return stale

    async def _ask(self, key: Key) -> Subscriber | None | LookupFailed:
        assert self.controller is not None, "the auth module was not started"
        self.queries.value += 1
        try:
            answer = await ask_through(self.breaker, self.controller, None,
                                       {"username": key[0], "realm": key[1]},
                                       self.config.api_timeout)
            subscriber = subscriber_from(answer, key)
        except CircuitOpen:
            self.short_circuits.value += 1
            return LookupFailed("circuit open")
        except ControllerFailure as exc:
            (self.timeouts if exc.kind == "timeout" else self.errors).value += 1
            # the kind only: a detail may quote the answer, and the answer may hold an HA1
            self.last_error = str(exc) if exc.kind in ("timeout", "unavailable") else exc.kind
            self.last_error_at = round(time.time(), 3)
            log.warning("auth: the API could not tell the credentials of %r in realm %r: "
                        "%s; answering %r", key[0], key[1], self.last_error,
                        self.config.api_on_error)
            return LookupFailed(exc.kind)
        except Exception as exc:  # noqa: BLE001 - a bug here must not lose the request
            self.guard.failed(f"asking {self.controller.target}", exc)
            self.errors.value += 1
            return LookupFailed("internal error")
        entry = self.cache.put(key, subscriber, self.router.clock())
        if self.cache_bus is not None:
            self.cache_bus.put(key, entry)
        return subscriber

    def flush(self, key: Key | None = None) -> int:
        """Forget the cached answer of ``key`` (or all), in every worker; how many here."""
        if self.cache_bus is not None:
            self.cache_bus.flush(key)
        return self.cache.flush(key)

    def status(self) -> dict[str, Any]:
        breaker = self.breaker
        return {"transport": self.config.api_transport, "target": self.config.api_url,
                "state": breaker.state, "consecutive_failures": breaker.failures,
                "retry_in": round(breaker.retry_in(), 3), "last_error": self.last_error,
                "last_error_at": self.last_error_at, "cached": len(self.cache), "in_flight": len(self._in_flight)}
