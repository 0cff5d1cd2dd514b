"""Bounds that keep one client from hurting the router or the other clients."""
from __future__ import annotations

from dataclasses import dataclass

import trio

from kamrouter.core.settings import RpcConfig

#: Bytes asked from a stream per receive call.
RECEIVE_SIZE = 65536


@dataclass(frozen=True)
class Limits:
    max_request_size: int
    #: Seconds to finish a started request, or to deliver a reply.
    client_timeout: float
    #: Seconds an idle connection is kept open.
    idle_timeout: float
    #: Shared by the stream and HTTP listeners: one token per open connection.
    connections: trio.CapacityLimiter

    @classmethod
    def from_config(cls, config: RpcConfig) -> Limits:
        return cls(config.max_request_size, config.client_timeout, config.idle_timeout,
                   trio.CapacityLimiter(config.max_clients))
