"""Which worker process holds the connection to a peer (``[core] workers`` above 1).

A TCP/TLS/WebSocket connection lives in the worker that accepted or opened it. Every
worker publishes on the state bus (:mod:`kamrouter.modules.bus`, channel
``connections``) each connection it opens and closes, so every other worker knows where
a flow is held: a request routed by one worker to a phone or browser connected to
another is handed to that one, which writes it on its connection
(:mod:`kamrouter.transport.handoff`), instead of opening a connection the peer cannot
accept. The bus keeps one sender's messages in order, so a phone's connection is known
everywhere before the binding it registered over it.

Messages: ``[worker, proto, host, port, 1]`` (opened), ``[..., 0]`` (closed), and
``[worker]``, which a worker publishes when it starts: what its predecessor held is gone.
A message naming this worker or not of that shape is refused (ValueError: the bus counts
it in ``bus:dropped_malformed``). An entry that outlived its connection (a lost close)
costs one hand-off, which its worker drops and counts.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from kamrouter.net import Endpoint

CHANNEL = "connections"
PROTOCOLS = frozenset(("tcp", "tls", "ws", "wss"))


class Publisher(Protocol):
    """The state bus, as far as this module uses it."""

    index: int

    def publish(self, channel: str, payload: Any) -> None: ...

    def register(self, name: str, channel: Any) -> None: ...


class ConnectionHolders:
    """The other workers' connections by peer, kept current through the bus."""

    def __init__(self, bus: Publisher, workers: int,
                 own: Callable[[], Iterable[Endpoint]]) -> None:
        """``own``: the peers of this worker's open connections (for dumps)."""
        self.bus = bus
        self.index = bus.index
        self.workers = workers
        self._own = own
        #: peer → the other worker whose connection reaches it.
        self.held: dict[Endpoint, int] = {}
        bus.register(CHANNEL, self)
        bus.publish(CHANNEL, [self.index])

    def holder(self, peer: Endpoint) -> int | None:
        """The other worker holding a connection to ``peer``, or None."""
        return self.held.get(peer)

    # -- this worker's connections ------------------------------------------------------
    def opened(self, peer: Endpoint) -> None:
        self.bus.publish(CHANNEL, [self.index, peer.proto, peer.host, peer.port, 1])

    def closed(self, peer: Endpoint) -> None:
        self.bus.publish(CHANNEL, [self.index, peer.proto, peer.host, peer.port, 0])

    # -- the bus's Channel --------------------------------------------------------------
    def apply(self, payload: Any) -> None:
        if not isinstance(payload, list) or not payload:
            raise ValueError(f"not a connection message: {payload!r}"[:200])
        worker = self._worker(payload[0])
        if len(payload) == 1:  # that worker (re)started: its predecessor's connections died
            self.held = {peer: w for peer, w in self.held.items() if w != worker}
            return
        if len(payload) != 5 or payload[4] not in (0, 1):
            raise ValueError(f"not a connection message: {payload!r}"[:200])
        peer = _peer(payload[1:4])
        if payload[4]:
            self.held[peer] = worker
        elif self.held.get(peer) == worker:
            del self.held[peer]

    def dump(self) -> list[list[Any]]:
        mine = [[self.index, *peer] for peer in self._own()]
        return mine + [[worker, *peer] for peer, worker in self.held.items()]

    def load(self, data: Any) -> None:
        held: dict[Endpoint, int] = {}
        for entry in data:
            if not isinstance(entry, list) or len(entry) != 4:
                raise ValueError(f"not a connection entry: {entry!r}"[:200])
            worker = entry[0]
            if worker != self.index:  # this worker's predecessor's: closed with it
                held[_peer(entry[1:])] = self._worker(worker)
        self.held = held

    def _worker(self, value: Any) -> int:
        if type(value) is not int or not 0 <= value < self.workers or value == self.index:
            raise ValueError(f"not another worker's index: {value!r}"[:200])
        return value


def _peer(fields: list[Any]) -> Endpoint:
    proto, host, port = fields
    if not (proto in PROTOCOLS and isinstance(host, str) and 0 < len(host) <= 64
            and type(port) is int and 0 < port < 65536):
        raise ValueError(f"not a connection's peer: {fields!r}"[:200])
    return Endpoint(proto, host, port)
