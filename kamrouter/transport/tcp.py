"""TCP and TLS: listeners, one connection table for both directions, Content-Length framing.

Replies go back on the connection their request came in on (the table is keyed by the peer's
address); outgoing requests reuse a connection to the same peer or open one (with several
workers, one another worker holds is used through it: :mod:`.holders`, told of each
connection and Via alias through ``on_opened``/``on_closed``). Each connection
has a reader task and a writer task with a bounded queue, so a slow peer costs memory up to
its queue bound and never stalls the router. Idle connections close after
``connection_lifetime`` seconds; ``max_connections`` caps the table and
``max_connections_per_ip`` the connections accepted from one address. A message must arrive
whole within ``msg_read_timeout`` seconds of its first byte (a peer trickling bytes cannot
hold a connection open). A stream that cannot be framed (too large: 513) is answered when
the request can be salvaged, and then closed. A ``tls:`` listener
or destination runs the same connection over a :class:`trio.SSLStream` (contexts from
:mod:`kamrouter.transport.tls`), after a handshake bounded by ``[tls] handshake_timeout``.
A ``ws:``/``wss:`` listener frames SIP with a WebSocket codec (:mod:`kamrouter.transport.ws`)
instead of Content-Length; the router never opens WebSocket connections itself.
"""
from __future__ import annotations

import itertools
import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from kamrouter.config import Range, range_problems
from kamrouter.guard import InputGuard
from kamrouter.net import Endpoint
from kamrouter.sip import Request, SipParseError, StreamFramer, make_response
from kamrouter.stats import StatsRegistry
from kamrouter.transport.tls import TlsContexts
from kamrouter.transport.ws import WebsocketConfig, WsClosed, WsCodec

log = logging.getLogger("kamrouter.transport")

OnMessage = Callable[[bytes, Endpoint, Endpoint], None]
OnError = Callable[[], None]
SEND_QUEUE = 512
#: Queued messages written at most in one write.
WRITE_BATCH = 128
#: Seconds a connection that failed framing gets to deliver its error reply before closing.
CLOSE_LINGER = 2.0
_connection_ids = itertools.count(1)
#: How often the reaper looks for idle connections at most (seconds).
REAP_INTERVAL = 5.0
#: Via aliases one connection may claim (a peer cannot fill the alias table).
MAX_ALIASES = 4
#: Transports whose bytes are TLS, and those that carry WebSocket frames.
SECURE = frozenset({"tls", "wss"})
WEBSOCKET = frozenset({"ws", "wss"})


@dataclass
class TcpConfig:
    """The ``[tcp]`` config section."""

    #: Seconds an idle connection stays open.
    connection_lifetime: int = 120
    max_connections: int = 2048
    #: Connections accepted from one IP address at a time (more are closed at once):
    #: one host cannot take the whole table, an office NAT still gets 256 phones.
    max_connections_per_ip: int = 256
    #: Seconds to wait for an outgoing connection.
    connect_timeout: float = 5.0
    #: Seconds a message may take to arrive whole once its first byte came (Kamailio's
    #: ``tcp_msg_read_timeout``, same default); then the connection is closed.
    msg_read_timeout: float = 20.0
    #: RFC 5923: a request whose Via carries ``alias`` lets requests to the Via's sent-by
    #: reuse the connection it came on (Kamailio's ``tcp_accept_aliases``, off by default:
    #: a peer could claim another's address; TLS peers are the ones to trust with it).
    accept_aliases: bool = False

    def validate(self) -> list[str]:
        return range_problems(self, {"connection_lifetime": Range(1, 86400, "s"),
                                     "max_connections": Range(1, 1_000_000),
                                     "max_connections_per_ip": Range(1, 65535),
                                     "connect_timeout": Range(0.01, 300, "s"),
                                     "msg_read_timeout": Range(0.1, 3600, "s")})


def framing_error_reply(exc: SipParseError) -> bytes | None:
    """The reply to a request that could not be cut out of the stream; None when what the
    framer salvaged is no request to answer (a reply, an ACK, or too broken)."""
    request = exc.message
    if not isinstance(request, Request) or request.method == "ACK":
        return None
    try:
        return make_response(request, exc.status, exc.reason).to_bytes()
    except SipParseError:  # e.g. no Via to copy
        return None


Stream = trio.SocketStream | trio.SSLStream[trio.SocketStream]


class TcpConnection:
    def __init__(self, stream: Stream, remote: Endpoint, local: Endpoint,
                 max_size: int, clock: Callable[[], float], msg_read_timeout: float,
                 websocket: WsCodec | None = None) -> None:
        self.created = time.time()
        self.stream = stream
        self.id = next(_connection_ids)
        self.msg_read_timeout = msg_read_timeout
        #: A message did not arrive whole in time (for the tcp:msg_read_timeout statistic).
        self.read_timed_out = False
        self.remote = remote
        self.local = local
        #: WebSocket connections frame SIP with the codec, the others by Content-Length.
        self.websocket = websocket
        self.framer: StreamFramer | WsCodec = websocket or StreamFramer(max_size=max_size)
        self.clock = clock
        self.last_activity = clock()
        #: When the peer last sent anything, and when we last pinged it (WebSocket).
        self.last_received = self.pinged = self.last_activity
        self.outgoing, self._queue = trio.open_memory_channel[bytes](SEND_QUEUE)
        self.cancel_scope = trio.CancelScope()
        #: Other addresses this connection is used for (RFC 5923 Via alias).
        self.aliases: list[Endpoint] = []
        #: The peer reset the connection (for the tcp:con_reset statistic).
        self.reset_by_peer = False
        #: Bytes queued for the writer and not yet sent (core.tcp_info).
        self.queued_bytes = 0

    def queue(self, data: bytes, framed: bool = False) -> bool:
        """Queue SIP message ``data`` (or, ``framed``, bytes for the wire as they are) for
        the writer; False when the queue is full or closed."""
        if self.websocket is not None and not framed:
            data = self.websocket.encode(data)
            if not data:
                return False  # not upgraded yet, or closing
        try:
            self.outgoing.send_nowait(data)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        self.queued_bytes += len(data)
        return True

    def close_websocket(self, code: int) -> bool:
        """Send a WebSocket close frame and end the connection once the peer answered (or
        after a linger); False when this is no open WebSocket connection."""
        closing = self.websocket.close(code) if self.websocket is not None else b""
        if not closing or not self.queue(closing, framed=True):
            return False
        self.cancel_scope.deadline = min(self.cancel_scope.deadline,
                                         trio.current_time() + CLOSE_LINGER)
        return True

    def tls_details(self) -> tuple[str, str] | None:
        """(protocol version, cipher) of a TLS connection, None for plain TCP."""
        if not isinstance(self.stream, trio.SSLStream):
            return None
        cipher = self.stream.cipher()
        return self.stream.version() or "", cipher[0] if cipher else ""

    @property
    def queue_full(self) -> bool:
        stats = self.outgoing.statistics()
        return stats.current_buffer_used >= stats.max_buffer_size

    async def run(self, on_message: OnMessage) -> None:
        with self.cancel_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write)
                reply = await self._read(on_message)
                if reply is None:
                    nursery.cancel_scope.cancel()
                else:
                    # Let the writer send what is queued, the error reply last, then stop.
                    self.queue(reply, framed=True)
                    self.outgoing.close()
                    nursery.cancel_scope.deadline = trio.current_time() + CLOSE_LINGER
            if reply is not None:
                await self._linger()
        with trio.CancelScope(shield=True):
            await self.stream.aclose()

    async def _read(self, on_message: OnMessage) -> bytes | None:
        """Read until EOF, a broken connection or a framing error; the bytes to send before
        closing (a framing error that left a request to answer, a WebSocket close frame or
        refused upgrade)."""
        framer = self.framer
        websocket = self.websocket
        try:
            with trio.CancelScope() as message_deadline:
                while True:
                    data = await self.stream.receive_some(65536)
                    if not data:
                        return None
                    self.last_activity = self.last_received = self.clock()
                    in_message = framer.in_message
                    framer.feed(data)
                    if websocket is not None:
                        handshake_or_pong = websocket.take_output()
                        if handshake_or_pong:
                            self.queue(handshake_or_pong, framed=True)
                    while True:
                        message = framer.next_message()
                        if framer.keepalives:
                            # RFC 5626 double-CRLF ping: a CRLF pong each, before what follows.
                            self.queue(b"\r\n" * framer.keepalives, framed=True)
                            framer.keepalives = 0
                        if message is None:
                            break
                        in_message = False
                        on_message(message, self.remote, self.local)
                    if not framer.in_message:
                        message_deadline.deadline = math.inf
                    elif not in_message:  # a message began in this read: its clock starts
                        message_deadline.deadline = trio.current_time() + self.msg_read_timeout
            self.read_timed_out = True
            log.info("closing tcp connection from %s: no whole message within %g s of its "
                     "first byte", self.remote, self.msg_read_timeout)
            return None
        except SipParseError as exc:
            log.info("closing tcp connection from %s: %s", self.remote, exc)
            return framing_error_reply(exc)
        except WsClosed as exc:
            log.info("closing websocket connection from %s: %s", self.remote, exc)
            return websocket.take_output() or None if websocket is not None else None
        except trio.BrokenResourceError:
            self.reset_by_peer = True
            return None
        except (trio.ClosedResourceError, OSError):
            return None

    async def _write(self) -> None:
        queue = self._queue
        try:
            async for data in queue:
                # Everything queued since the last write goes out in one write: a busy
                # trunk connection gets many messages per scheduling round, and one write
                # (one TLS record) each would not keep up.
                batch = [data]
                while len(batch) < WRITE_BATCH:
                    try:
                        batch.append(queue.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):  # all sent, or closed
                        break
                data = batch[0] if len(batch) == 1 else b"".join(batch)
                await self.stream.send_all(data)
                self.queued_bytes -= len(data)
                self.last_activity = self.clock()
        except trio.BrokenResourceError:
            self.reset_by_peer = True
            self.cancel_scope.cancel()
        except (trio.ClosedResourceError, OSError):
            self.cancel_scope.cancel()

    async def _linger(self) -> None:
        """Half-close, then drop what the peer still sends: closing a socket with unread
        input resets the connection, and some peers' stacks then discard the unread reply."""
        with trio.move_on_after(CLOSE_LINGER):
            try:
                if isinstance(self.stream, trio.SSLStream):
                    return  # TLS has no half-close: its close_notify ends both directions
                await self.stream.send_eof()
                while await self.stream.receive_some(65536):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass


@dataclass(frozen=True)
class ConnectionInfo:
    """One open connection, as the RPC methods ``core.tcp_list``/``core.tcp_info`` show it."""

    id: int
    remote: Endpoint
    local: Endpoint
    idle: float          # seconds since the last byte in or out
    queued_bytes: int    # waiting for the writer
    closing: bool


class TcpTransport:
    def __init__(self, listens: list[Endpoint], config: TcpConfig, max_size: int,
                 stats: StatsRegistry, clock: Callable[[], float],
                 tls: TlsContexts | None = None,
                 websocket: WebsocketConfig | None = None,
                 bound: dict[Endpoint, socket.socket] | None = None) -> None:
        self.listens = listens
        #: Listeners bound already (a worker's share of a SO_REUSEPORT group).
        self._bound = bound or {}
        self.config = config
        self.tls = tls
        self.websocket = websocket or WebsocketConfig()
        self.max_size = max_size
        self.clock = clock
        self.connections: dict[Endpoint, TcpConnection] = {}
        #: Addresses peers named in a Via ``alias`` → the connection they came on.
        self._aliases: dict[Endpoint, TcpConnection] = {}
        #: Destinations being connected to, with what waits to be sent there.
        self._connecting: dict[Endpoint, list[tuple[bytes, OnError | None]]] = {}
        self._nursery: trio.Nursery | None = None
        self._on_message: OnMessage | None = None
        #: Told of each connection's peer as it enters and leaves the table (the other
        #: workers learn where it is held, :mod:`kamrouter.transport.holders`).
        self.on_opened: Callable[[Endpoint], None] | None = None
        self.on_closed: Callable[[Endpoint], None] | None = None
        self.on_aliased: Callable[[Endpoint], None] | None = None
        #: The other workers' connections (all, or from/to one host): the caps count them.
        self.elsewhere: Callable[[str | None], int] = lambda host: 0
        self.guard = InputGuard("core", stats, log, "drops_internal_error_tcp")
        counter = stats.counter
        self.established = counter("tcp", "established")
        self.passive_open = counter("tcp", "passive_open")
        self.connect_success = counter("tcp", "connect_success")
        self.connect_failed = counter("tcp", "connect_failed")
        self.local_reject = counter("tcp", "local_reject")
        self.con_timeout = counter("tcp", "con_timeout")
        self.con_reset = counter("tcp", "con_reset")
        self.msg_read_timeout = counter("tcp", "msg_read_timeout")
        self.ip_limit_reject = counter("tcp", "ip_limit_reject")
        #: Accepted connections per peer IP address (max_connections_per_ip).
        self._accepted_per_ip: dict[str, int] = {}
        self.sendq_full = counter("tcp", "sendq_full")
        self.tls_handshakes = counter("tls", "handshakes")
        self.tls_handshake_failed = counter("tls", "handshake_failed")
        stats.gauge("tls", "current_opened_connections", lambda: sum(
            1 for remote in self.connections if remote.proto in SECURE), per_process=True)
        stats.gauge("websocket", "ws_current_connections", lambda: sum(
            1 for remote in self.connections if remote.proto in WEBSOCKET), per_process=True)
        stats.gauge("tcp", "current_opened_connections", lambda: len(self.connections),
                    per_process=True)

    def _at_cap(self) -> bool:
        """Open connections, counting those being opened, have reached ``max_connections``."""
        return len(self.connections) + len(self._connecting) + self.elsewhere(None) \
            >= self.config.max_connections

    async def serve(self, on_message: OnMessage,
                    task_status: trio.TaskStatus[list[Endpoint]] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        self._on_message = on_message
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            bound: list[Endpoint] = []
            for listen in self.listens:
                listeners = await self._listen(listen)
                port = listeners[0].socket.getsockname()[1]
                endpoint = Endpoint(listen.proto, listen.host, port)
                bound.append(endpoint)
                nursery.start_soon(trio.serve_listeners,
                                   lambda stream, ep=endpoint: self._accepted(stream, ep),
                                   listeners)
            self.listens = bound
            nursery.start_soon(self._reap_idle)
            task_status.started(bound)

    async def _listen(self, listen: Endpoint) -> list[trio.SocketListener]:
        sock = self._bound.get(listen)
        if sock is None:
            return await trio.open_tcp_listeners(listen.port, host=listen.host)
        sock.listen(socket.SOMAXCONN)
        return [trio.SocketListener(trio.socket.from_stdlib_socket(sock))]

    async def _accepted(self, stream: trio.SocketStream, local: Endpoint) -> None:
        try:
            host, port = stream.socket.getpeername()[:2]
        except OSError:  # the peer is already gone (reset before we got to it)
            self.con_reset.value += 1
            await stream.aclose()
            return
        if self._at_cap():
            self.local_reject.value += 1
            await stream.aclose()
            return
        per_ip = self._accepted_per_ip
        if per_ip.get(host, 0) + self.elsewhere(host) >= self.config.max_connections_per_ip:
            self.ip_limit_reject.value += 1
            await stream.aclose()
            return
        self.passive_open.value += 1
        per_ip[host] = per_ip.get(host, 0) + 1
        try:
            remote = Endpoint(local.proto, host, port)
            secured = await self._secure(stream, remote, server_side=True)
            if secured is not None:
                await self._run(self._connection(secured, remote, local))
        finally:
            if per_ip[host] > 1:
                per_ip[host] -= 1
            else:
                del per_ip[host]

    def _connection(self, stream: Stream, remote: Endpoint,
                    local: Endpoint) -> TcpConnection:
        websocket = WsCodec(self.websocket) if local.proto in WEBSOCKET else None
        return TcpConnection(stream, remote, local, self.max_size, self.clock,
                             self.config.msg_read_timeout, websocket)

    async def _secure(self, stream: trio.SocketStream, remote: Endpoint,
                      server_side: bool) -> Stream | None:
        """``stream`` itself for TCP; for TLS the stream after a completed handshake, or
        None (closed, counted, logged) when the handshake fails or takes too long."""
        if remote.proto not in SECURE:
            return stream
        assert self.tls is not None  # tls:/wss: listeners and destinations need [tls]
        if server_side:
            context = self.tls.server
            assert context is not None
            secured = trio.SSLStream(stream, context, server_side=True)
        else:
            secured = trio.SSLStream(stream, self.tls.client,
                                     server_hostname=self.tls.client_server_name)
        done = False
        with trio.move_on_after(self.tls.config.handshake_timeout) as timer:
            try:
                await secured.do_handshake()
                done = True
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.info("tls handshake with %s failed: %s", remote, exc.__cause__ or exc)
        if done:
            self.tls_handshakes.value += 1
            return secured
        if timer.cancelled_caught:
            log.info("tls handshake with %s timed out", remote)
        self.tls_handshake_failed.value += 1
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)
        return None

    async def _run(self, conn: TcpConnection) -> None:
        self.connections[conn.remote] = conn
        self.established.value += 1
        if self.on_opened is not None:
            self.on_opened(conn.remote)
        try:
            await conn.run(self._on_message)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - last resort: a bug ends this connection only
            self.guard.failed(conn.remote, exc)
        finally:
            if self.connections.get(conn.remote) is conn:
                del self.connections[conn.remote]
                if self.on_closed is not None:
                    self.on_closed(conn.remote)
            for alias in conn.aliases:
                if self._aliases.get(alias) is conn:
                    del self._aliases[alias]
                    if self.on_closed is not None:
                        self.on_closed(alias)
            if conn.reset_by_peer:
                self.con_reset.value += 1
            if conn.read_timed_out:
                self.msg_read_timeout.value += 1

    def connection_table(self) -> list[ConnectionInfo]:
        """The open connections, oldest first (a copy: the table may change meanwhile)."""
        now = self.clock()
        return [ConnectionInfo(conn.id, conn.remote, conn.local, now - conn.last_activity,
                               conn.queued_bytes, conn.cancel_scope.cancel_called)
                for conn in sorted(self.connections.values(), key=lambda c: c.id)]

    def reachable_peers(self) -> list[Endpoint]:
        """The peers of the open connections and the Via aliases of them."""
        return [*self.connections, *self._aliases]

    def alias(self, alias: Endpoint, remote: Endpoint) -> None:
        """Requests to ``alias`` reuse the connection from ``remote`` while it lives."""
        conn = self.connections.get(remote)
        if (conn is None or not self.config.accept_aliases or len(conn.aliases) >= MAX_ALIASES
                or alias in self.connections or alias in self._aliases):
            return
        self._aliases[alias] = conn
        conn.aliases.append(alias)
        if self.on_aliased is not None:  # other workers hand what goes to it to this one
            self.on_aliased(alias)

    def reaches(self, dest: Endpoint, connecting: bool = True) -> bool:
        """A connection to ``dest`` (or one a Via alias names) is open, or (``connecting``)
        being opened."""
        return dest in self.connections or dest in self._aliases or (
            connecting and dest in self._connecting)

    def local_for(self, dest: Endpoint) -> Endpoint | None:
        family_v6 = ":" in dest.host
        for listen in self.listens:
            if listen.proto == dest.proto and (":" in listen.host) == family_v6:
                return listen
        return None

    def send(self, data: bytes, dest: Endpoint, on_error: OnError | None) -> None:
        """Queue ``data`` to ``dest`` on its connection, opening one if needed; ``on_error``
        runs later, from a task of its own, if it cannot be sent."""
        conn = self.connections.get(dest) or self._aliases.get(dest)
        if conn is not None:
            if not conn.queue(data):
                if conn.queue_full:
                    self.sendq_full.value += 1
                self._fail_later(on_error)
            return
        waiting = self._connecting.get(dest)
        if waiting is not None:
            waiting.append((data, on_error))
            return
        if dest.proto in WEBSOCKET:
            # Browsers connect to us; a WebSocket peer without its connection is gone.
            self._fail_later(on_error)
            return
        if self._nursery is None or self.local_for(dest) is None:
            self._fail_later(on_error)
            return
        if self._at_cap():
            self.local_reject.value += 1
            log.info("tcp connect to %s refused: max_connections (%d) reached", dest,
                     self.config.max_connections)
            self._fail_later(on_error)
            return
        self._connecting[dest] = [(data, on_error)]
        self._nursery.start_soon(self._connect, dest)

    def _fail_later(self, on_error: OnError | None) -> None:
        if on_error is None:
            return
        if self._nursery is None:  # not serving (yet): there is no later to run it in
            on_error()
        else:
            self._nursery.start_soon(_call, on_error)

    async def _connect(self, dest: Endpoint) -> None:
        stream = None
        with trio.move_on_after(self.config.connect_timeout):
            try:
                stream = await trio.open_tcp_stream(dest.host, dest.port)
            except OSError as exc:
                log.info("tcp connect to %s failed: %s", dest, exc)
        waiting = self._connecting.pop(dest, [])
        if stream is None:
            self.connect_failed.value += 1
            for _, on_error in waiting:
                if on_error is not None:
                    on_error()
            return
        self.connect_success.value += 1
        local = self.local_for(dest)
        assert local is not None  # send() opens connections only where we have a listener
        secured = await self._secure(stream, dest, server_side=False)
        if secured is None:
            for _, on_error in waiting:
                if on_error is not None:
                    on_error()
            return
        conn = self._connection(secured, dest, local)
        for data, on_error in waiting:
            if not conn.queue(data):
                self.sendq_full.value += 1
                self._fail_later(on_error)
        await self._run(conn)

    async def _reap_idle(self) -> None:
        lifetime = self.config.connection_lifetime
        keepalive = self.websocket.keepalive_interval
        while True:
            await trio.sleep(min(lifetime, REAP_INTERVAL, keepalive or REAP_INTERVAL))
            now = self.clock()
            for conn in list(self.connections.values()):
                if conn.last_activity < now - lifetime and not conn.cancel_scope.cancel_called:
                    self.con_timeout.value += 1
                    conn.cancel_scope.cancel()
                elif keepalive and conn.websocket is not None:
                    self._keep_alive(conn, conn.websocket, now, keepalive)

    def _keep_alive(self, conn: TcpConnection, websocket: WsCodec, now: float,
                    interval: int) -> None:
        """Ping a WebSocket peer silent for ``interval`` seconds; close it when it stayed
        silent for as long after the ping (a browser that vanished without a FIN)."""
        if now - conn.last_received < interval:
            return
        if conn.pinged > conn.last_received and now - conn.pinged >= interval:
            self.con_timeout.value += 1
            conn.cancel_scope.cancel()
        elif conn.pinged <= conn.last_received:
            conn.pinged = now
            conn.queue(websocket.ping(), framed=True)


async def _call(callback: OnError) -> None:
    callback()
