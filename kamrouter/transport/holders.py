"""Which worker process holds the connection to a peer (``[core] workers`` above 1).

A TCP/TLS/WebSocket connection lives in the worker that accepted or opened it. Every
worker publishes on the state bus (:mod:`kamrouter.modules.bus`, channel
``connections``) each connection it opens and closes, so every other worker knows where
a flow is held: a request routed by one worker to a phone or browser connected to
another is handed to that one, which writes it on its connection
(:mod:`kamrouter.transport.handoff`), instead of opening a connection the peer cannot
accept. The bus keeps one sender's messages in order, so a phone's connection is known
everywhere before the binding it registered over it.

Messages: ``[worker, proto, host, port, 1]`` (opened), ``[..., 2]`` (a Via alias of one of
its connections, RFC 5923), ``[..., 0]`` (closed, either), and ``[worker]``, which a
worker publishes when it starts: what its predecessor held is gone. The connections (not
the aliases) count towards ``[tcp] max_connections`` and ``max_connections_per_ip`` in
every worker (:meth:`ConnectionHolders.count`), as far as the bus has told (it takes
~0.2 ms): the caps hold for the router, not per worker.
A message naming this worker or not of that shape is refused (ValueError: the bus counts
it in ``bus:dropped_malformed``). An entry that outlived its connection (a lost close)
costs one hand-off, which its worker drops and counts.
"""
from __future__ import annotations

from collections import Counter
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
        #: The other workers' connections (not their aliases) by peer address.
        self._per_host: Counter[str] = Counter()
        self._connections: set[Endpoint] = set()
        bus.register(CHANNEL, self)
        bus.publish(CHANNEL, [self.index])

    def holder(self, peer: Endpoint) -> int | None:
        """The other worker holding a connection to ``peer``, or None."""
        return self.held.get(peer)

    def count(self, host: str | None = None) -> int:
        """The other workers' connections (from or to ``host``, if given)."""
        return len(self._connections) if host is None else self._per_host[host]

    # -- this worker's connections ------------------------------------------------------
    def opened(self, peer: Endpoint) -> None:
        self.bus.publish(CHANNEL, [self.index, peer.proto, peer.host, peer.port, 1])

    def aliased(self, peer: Endpoint) -> None:
        self.bus.publish(CHANNEL, [self.index, peer.proto, peer.host, peer.port, 2])

    def closed(self, peer: Endpoint) -> None:
        self.bus.publish(CHANNEL, [self.index, peer.proto, peer.host, peer.port, 0])

    # -- the bus's Channel --------------------------------------------------------------
    def apply(self, payload: Any) -> None:
        if not isinstance(payload, list) or not payload:
            raise ValueError(f"not a connection message: {payload!r}"[:200])
        worker = self._worker(payload[0])
        if len(payload) == 1:  # that worker (re)started: its predecessor's connections died
            for peer in [peer for peer, w in self.held.items() if w == worker]:
                self._forget(peer)
            return
        if len(payload) != 5 or payload[4] not in (0, 1, 2):
            raise ValueError(f"not a connection message: {payload!r}"[:200])
        peer = _peer(payload[1:4])
        if payload[4]:
            self._forget(peer)
            self.held[peer] = worker
            if payload[4] == 1:
                self._connections.add(peer)
                self._per_host[peer.host] += 1
        elif self.held.get(peer) == worker:
            self._forget(peer)

    def _forget(self, peer: Endpoint) -> None:
        self.held.pop(peer, None)
        if peer in self._connections:
            self._connections.discard(peer)
            self._per_host[peer.host] -= 1
            if not self._per_host[peer.host]:
                del self._per_host[peer.host]

    def dump(self) -> list[list[Any]]:
        mine = [[self.index, *peer] for peer in self._own()]
        return mine + [[worker, *peer] for peer, worker in self.held.items()]

    def load(self, data: Any) -> None:
        entries = []
        for entry in data:
            if not isinstance(entry, list) or len(entry) != 4:
                raise ValueError(f"not a connection entry: {entry!r}"[:200])
            if entry[0] != self.index:  # this worker's predecessor's: closed with it
                entries.append((_peer(entry[1:]), self._worker(entry[0])))
        for peer in list(self.held):
            self._forget(peer)
        for peer, worker in entries:
            self.held[peer] = worker
            self._connections.add(peer)  # a dump does not tell aliases apart: counted
            self._per_host[peer.host] += 1

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
