"""All listening sockets of the router, and the one ``send`` every layer uses (which never
sends to one of the router's own listening addresses). With several workers, a message for
a connection another worker holds (:mod:`.holders`) is handed to that worker to send."""
from __future__ import annotations

import logging
import socket as socket_module
from collections.abc import Callable

import trio

from kamrouter.net import Endpoint, OwnEndpoints, parse_socket
from kamrouter.stats import StatsRegistry
from kamrouter.transport.handoff import Handoff, OnHandedOff
from kamrouter.transport.holders import ConnectionHolders, Publisher
from kamrouter.transport.shared import WorkerSockets
from kamrouter.transport.tcp import OnMessage, TcpConfig, TcpTransport
from kamrouter.transport.tls import TlsContexts
from kamrouter.transport.ws import WebsocketConfig
from kamrouter.transport.udp import UdpSocket

log = logging.getLogger("kamrouter.transport")

#: Transports carried on the connection table (plain, TLS, WebSocket, secure WebSocket).
STREAMS = frozenset({"tcp", "tls", "ws", "wss"})


def tls_listener_problem(listens: list[Endpoint], has_server_profile: bool) -> str | None:
    """A ``tls:``/``wss:`` listener without a certificate to serve (for ``--check`` too)."""
    if has_server_profile or not any(e.proto in ("tls", "wss") for e in listens):
        return None
    return ("core.listen: a tls: or wss: listener needs a [[tls.server]] profile with "
            "certificate and private_key")


class Transports:
    def __init__(self, listens: list[Endpoint], tcp_config: TcpConfig, max_size: int,
                 stats: StatsRegistry, clock: Callable[[], float],
                 own: OwnEndpoints | None = None, tls: TlsContexts | None = None,
                 websocket: WebsocketConfig | None = None,
                 worker: WorkerSockets | None = None) -> None:
        """``worker``: the sockets of one worker process, bound by the supervisor (its
        listeners must be ``listens``); None binds ``listens`` here (one process)."""
        #: Where the router itself listens: sends there are refused (see :meth:`refuses`).
        self.own = own if own is not None else OwnEndpoints()
        self.to_own_socket = stats.counter("core", "drops_to_own_socket")
        unsupported = [str(e) for e in listens if e.proto not in STREAMS | {"udp"}]
        if unsupported:
            raise ValueError(f"core.listen: unsupported transport in {', '.join(unsupported)}"
                             " (udp, tcp, tls, ws and wss are available)")
        problem = tls_listener_problem(listens, tls is not None and tls.server is not None)
        if problem is not None:
            raise ValueError(problem)
        # UDP sockets bind at once, so the port is ours before anything else starts.
        self.udp = [UdpSocket(e, stats, _from_fd(worker.udp[e]) if worker else None)
                    for e in listens if e.proto == "udp"]
        stream_listens = [e for e in listens if e.proto in STREAMS]
        bound = {e: _from_fd(fd) for e, fd in worker.stream.items()} if worker else None
        self.tcp = TcpTransport(stream_listens, tcp_config, max_size, stats, clock, tls,
                                websocket, bound) if stream_listens else None
        self._udp_by_endpoint = {s.endpoint: s for s in self.udp}
        for sock in self.udp:
            self.own.add(sock.endpoint.host, sock.endpoint.port)
        #: A worker's end of the hand-off between workers (None: a single process).
        self.handoff = Handoff(worker.index, worker.handoff, worker.handoff_peers,
                               lambda: self.sockets, stats) \
            if worker is not None and worker.handoff >= 0 else None
        #: Which other worker holds the connection to a peer (None: no such workers).
        self.holders: ConnectionHolders | None = None
        for endpoint in worker.control if worker else ():
            self.own.add(endpoint.host, endpoint.port)

    def share_connections(self, bus: Publisher, workers: int) -> None:
        """Tell the other workers (over the state bus) which connections this one holds,
        and learn theirs: what must go out on one of them is handed to its worker."""
        tcp = self.tcp
        if tcp is None or self.handoff is None:
            return
        holders = ConnectionHolders(bus, workers, tcp.reachable_peers)
        tcp.on_opened, tcp.on_closed = holders.opened, holders.closed
        tcp.on_aliased, tcp.elsewhere = holders.aliased, holders.count
        self.holders = holders

    @property
    def sockets(self) -> list[Endpoint]:
        tcp = self.tcp.listens if self.tcp is not None else []
        return [s.endpoint for s in self.udp] + list(tcp)

    async def serve(self, on_message: OnMessage, on_handed_off: OnHandedOff | None = None,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Receive on every socket; ``on_handed_off`` gets what other workers pass on."""
        async with trio.open_nursery() as nursery:
            if self.tcp is not None:
                for endpoint in await nursery.start(self.tcp.serve, on_message):
                    self.own.add(endpoint.host, endpoint.port)
            for sock in self.udp:
                nursery.start_soon(sock.serve, on_message)
            if self.handoff is not None and on_handed_off is not None:
                nursery.start_soon(self.handoff.serve, on_handed_off, self._send_handed)
            task_status.started()

    def local_for(self, dest: Endpoint, socket: str | None = None) -> Endpoint | None:
        """The local socket to send to ``dest`` from (``socket`` forces one of ours)."""
        if socket:
            wanted = parse_socket(socket)
            for endpoint in self.sockets:
                if (endpoint.proto, endpoint.host, endpoint.port) == wanted:
                    return endpoint if endpoint.proto == dest.proto else None
            return None
        if dest.proto in STREAMS:
            return self.tcp.local_for(dest) if self.tcp is not None else None
        v6 = ":" in dest.host
        for sock in self.udp:
            if (sock.family == socket_module.AF_INET6) == v6:
                return sock.endpoint
        return None

    def refuses(self, dest: Endpoint) -> bool:
        """``dest`` is one of the router's own listening addresses: counted, never sent to."""
        if dest not in self.own:
            return False
        self.to_own_socket.value += 1
        log.debug("not sending to %s: it is one of this router's own sockets", dest)
        return True

    def send(self, data: bytes, dest: Endpoint, local: Endpoint | None,
             on_error: Callable[[], None] | None) -> None:
        if self.refuses(dest):
            if on_error is not None:
                on_error()
            return
        if dest.proto == "udp":
            sock = self._udp_by_endpoint.get(local) if local is not None else None  # type: ignore[arg-type]
            if sock is None:
                chosen = self.local_for(dest)
                sock = self._udp_by_endpoint.get(chosen) if chosen else None  # type: ignore[arg-type]
            if sock is None:
                if on_error is not None:
                    on_error()
                return
            sock.send(data, dest)
        elif self.tcp is not None and dest.proto in STREAMS:
            holder, handoff = self._holder(dest), self.handoff
            if holder is None or handoff is None:
                self.tcp.send(data, dest, on_error)
            elif not handoff.send_over(holder, dest, data) and on_error is not None:
                on_error()
        elif on_error is not None:
            on_error()

    def _holder(self, dest: Endpoint) -> int | None:
        """The other worker to hand a message for ``dest`` to: the one holding a connection
        to it, when this worker neither has one nor is opening one."""
        holders = self.holders
        if holders is None or self.tcp is None or self.tcp.reaches(dest):
            return None
        return holders.holder(dest)

    def _send_handed(self, data: bytes, dest: Endpoint, origin: int) -> None:
        """Write what worker ``origin`` handed over on this worker's connection to ``dest``;
        dropped and counted when there is none (closed meanwhile, or never ours): a
        connection is never opened for another worker."""
        tcp, handoff = self.tcp, self.handoff
        if tcp is None or not tcp.reaches(dest, connecting=False):
            if handoff is not None:
                handoff.dropped.value += 1
            log.debug("hand-off from worker %d: no connection to %s here", origin, dest)
            return
        tcp.send(data, dest, None)

    def alias(self, alias: Endpoint, remote: Endpoint) -> None:
        """Send what goes to ``alias`` over the connection from ``remote`` (RFC 5923)."""
        if self.tcp is not None:
            self.tcp.alias(alias, remote)

    def connected(self, dest: Endpoint) -> bool:
        """A connection to ``dest`` is open, here or in another worker (a WebSocket client
        is reachable only then)."""
        if self.tcp is None:
            return False
        if dest in self.tcp.connections:
            return True
        return self.holders is not None and self.holders.holder(dest) is not None

    def close(self) -> None:
        for sock in self.udp:
            sock.close()
        if self.handoff is not None:
            self.handoff.close()


def _from_fd(fd: int) -> socket_module.socket:
    """The socket behind an inherited descriptor (family and type read from it)."""
    return socket_module.socket(fileno=fd)
