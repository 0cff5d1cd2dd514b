"""Bounds that keep one client from hurting the router or the other clients, and the
counters and guard that record what the transports refused or dropped.

The Unix stream socket and HTTP have separate connection limits (``rpc.max_clients`` and
``rpc.http_max_clients``): network clients filling theirs never lock out the local operator.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from kamrouter.guard import InputGuard
from kamrouter.rpc.config import RpcConfig
from kamrouter.stats import Counter, StatsRegistry

#: Bytes asked from a stream per receive call.
RECEIVE_SIZE = 65536


@dataclass(frozen=True)
class Limits:
    max_request_size: int
    #: Seconds to finish a started request, or to deliver a reply.
    client_timeout: float
    #: Seconds an idle connection is kept open.
    idle_timeout: float
    #: One token per open Unix stream socket connection.
    local_clients: trio.CapacityLimiter
    #: One token per open HTTP connection.
    http_clients: trio.CapacityLimiter

    @classmethod
    def from_config(cls, config: RpcConfig) -> Limits:
        return cls(config.max_request_size, config.client_timeout, config.idle_timeout,
                   trio.CapacityLimiter(config.max_clients),
                   trio.CapacityLimiter(config.http_max_clients))


@dataclass(frozen=True)
class Counters:
    """``rpc:*`` statistics of the transports (``rpc:refused_json_limit`` is the
    dispatcher's)."""

    #: Failures that escaped a handler: logged, counted in ``rpc:drops_internal_error``.
    guard: InputGuard
    #: Connections refused because their transport's client limit was reached.
    refused_clients: Counter
    #: HTTP requests without valid credentials (answered 401).
    refused_auth: Counter

    @classmethod
    def register(cls, stats: StatsRegistry, log: logging.Logger) -> Counters:
        return cls(InputGuard("rpc", stats, log), stats.counter("rpc", "refused_clients"),
                   stats.counter("rpc", "refused_auth"))
