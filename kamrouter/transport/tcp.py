"""TCP: listeners, one connection table for both directions, Content-Length framing.

Replies go back on the connection their request came in on (the table is keyed by the peer's
address); outgoing requests reuse a connection to the same peer or open one. Each connection
has a reader task and a writer task with a bounded queue, so a slow peer costs memory up to
its queue bound and never stalls the router. Idle connections close after
``connection_lifetime`` seconds; ``max_connections`` caps the table.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from kamrouter.net import Endpoint
from kamrouter.sip import SipParseError, StreamFramer
from kamrouter.stats import StatsRegistry

log = logging.getLogger("kamrouter.transport")

OnMessage = Callable[[bytes, Endpoint, Endpoint], None]
SEND_QUEUE = 512


@dataclass
class TcpConfig:
    """The ``[tcp]`` config section."""

    #: Seconds an idle connection stays open.
    connection_lifetime: int = 120
    max_connections: int = 2048
    #: Seconds to wait for an outgoing connection.
    connect_timeout: float = 5.0


class TcpConnection:
    def __init__(self, stream: trio.SocketStream, remote: Endpoint, local: Endpoint,
                 max_size: int, clock: Callable[[], float]) -> None:
        self.stream = stream
        self.remote = remote
        self.local = local
        self.framer = StreamFramer(max_size=max_size)
        self.clock = clock
        self.last_activity = clock()
        self.outgoing, self._queue = trio.open_memory_channel[bytes](SEND_QUEUE)
        self.cancel_scope = trio.CancelScope()

    def queue(self, data: bytes) -> bool:
        try:
            self.outgoing.send_nowait(data)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    async def run(self, on_message: OnMessage) -> None:
        with self.cancel_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write)
                await self._read(on_message)
                nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            await self.stream.aclose()

    async def _read(self, on_message: OnMessage) -> None:
        framer = self.framer
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    return
                self.last_activity = self.clock()
                framer.feed(data)
                while (message := framer.next_message()) is not None:
                    on_message(message, self.remote, self.local)
                if framer.keepalives:
                    # RFC 5626 double-CRLF ping: answer with a single CRLF pong.
                    framer.keepalives = 0
                    self.queue(b"\r\n")
        except SipParseError as exc:
            log.info("closing tcp connection from %s: %s", self.remote, exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return

    async def _write(self) -> None:
        try:
            async for data in self._queue:
                await self.stream.send_all(data)
                self.last_activity = self.clock()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.cancel_scope.cancel()


class TcpTransport:
    def __init__(self, listens: list[Endpoint], config: TcpConfig, max_size: int,
                 stats: StatsRegistry, clock: Callable[[], float]) -> None:
        self.listens = listens
        self.config = config
        self.max_size = max_size
        self.clock = clock
        self.connections: dict[Endpoint, TcpConnection] = {}
        self._connecting: dict[Endpoint, list[tuple[bytes, Callable[[], None] | None]]] = {}
        self._nursery: trio.Nursery | None = None
        self._on_message: OnMessage | None = None
        counter = stats.counter
        self.established = counter("tcp", "established")
        self.passive_open = counter("tcp", "passive_open")
        self.connect_success = counter("tcp", "connect_success")
        self.connect_failed = counter("tcp", "connect_failed")
        self.local_reject = counter("tcp", "local_reject")
        self.con_timeout = counter("tcp", "con_timeout")
        self.sendq_full = counter("tcp", "sendq_full")
        stats.gauge("tcp", "current_opened_connections", lambda: len(self.connections))

    async def serve(self, on_message: OnMessage,
                    task_status: trio.TaskStatus[list[Endpoint]] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        self._on_message = on_message
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            bound: list[Endpoint] = []
            for listen in self.listens:
                listeners = await trio.open_tcp_listeners(listen.port, host=listen.host)
                port = listeners[0].socket.getsockname()[1]
                endpoint = Endpoint("tcp", listen.host, port)
                bound.append(endpoint)
                nursery.start_soon(trio.serve_listeners,
                                   lambda stream, ep=endpoint: self._accepted(stream, ep),
                                   listeners)
            self.listens = bound
            nursery.start_soon(self._reap_idle)
            task_status.started(bound)

    async def _accepted(self, stream: trio.SocketStream, local: Endpoint) -> None:
        host, port = stream.socket.getpeername()[:2]
        remote = Endpoint("tcp", host, port)
        if len(self.connections) >= self.config.max_connections:
            self.local_reject.value += 1
            await stream.aclose()
            return
        self.passive_open.value += 1
        await self._run(TcpConnection(stream, remote, local, self.max_size, self.clock))

    async def _run(self, conn: TcpConnection) -> None:
        self.connections[conn.remote] = conn
        self.established.value += 1
        try:
            await conn.run(self._on_message)  # type: ignore[arg-type]
        finally:
            if self.connections.get(conn.remote) is conn:
                del self.connections[conn.remote]

    def local_for(self, dest: Endpoint) -> Endpoint | None:
        family_v6 = ":" in dest.host
        for listen in self.listens:
            if (":" in listen.host) == family_v6:
                return listen
        return None

    def send(self, data: bytes, dest: Endpoint, on_error: Callable[[], None] | None) -> None:
        conn = self.connections.get(dest)
        if conn is not None:
            if not conn.queue(data):
                self.sendq_full.value += 1
            return
        waiting = self._connecting.get(dest)
        if waiting is not None:
            waiting.append((data, on_error))
            return
        if self._nursery is None:
            if on_error is not None:
                on_error()
            return
        self._connecting[dest] = [(data, on_error)]
        self._nursery.start_soon(self._connect, dest)

    async def _connect(self, dest: Endpoint) -> None:
        local = self.local_for(dest)
        stream = None
        if len(self.connections) < self.config.max_connections:
            with trio.move_on_after(self.config.connect_timeout):
                try:
                    stream = await trio.open_tcp_stream(dest.host, dest.port)
                except OSError as exc:
                    log.info("tcp connect to %s failed: %s", dest, exc)
        waiting = self._connecting.pop(dest, [])
        if stream is None or local is None:
            self.connect_failed.value += 1
            for _, on_error in waiting:
                if on_error is not None:
                    on_error()
            return
        self.connect_success.value += 1
        conn = TcpConnection(stream, dest, local, self.max_size, self.clock)
        for data, _ in waiting:
            conn.queue(data)
        await self._run(conn)

    async def _reap_idle(self) -> None:
        lifetime = self.config.connection_lifetime
        while True:
            await trio.sleep(min(lifetime, 5.0))
            deadline = self.clock() - lifetime
            for conn in list(self.connections.values()):
                if conn.last_activity < deadline:
                    self.con_timeout.value += 1
                    conn.cancel_scope.cancel()
