"""A keep-alive HTTP/1.1 client on trio: the transport under ``http_client.query``.

Why not httpx: a routing API is asked once per call, and httpx's request machinery (URL and
header models, its connection pool's scheduling) costs 0.6-0.9 ms of CPU per POST to a local
controller, more than routing the call itself. Here an exchange is one ``send`` and one or
two ``recv`` on a plain non-blocking socket, with the messages from :mod:`.codec`: about
0.1 ms (``benchmarks/http_client.py`` measures both side by side).

It keeps what a per-call query needs: one pool of idle connections per origin (bounded, with
an expiry), a bound on connections in use at once, TLS through ``trio.SSLStream``, bodies
sized by Content-Length, chunked or connection close. An idle connection is reused without
asking the kernel first whether the server closed it meanwhile; if it breaks before a byte
of the answer came, the request is sent once more on a new connection (a server that
closed an idle connection did not read what came after; one that read a request and closed
without answering gets it twice). It does not follow redirects (as Kamailio's http_client
by default), speak HTTP/2, use proxies or decompress.

Errors: :class:`ConnectFailed` (refused, unreachable, TLS handshake) and
:class:`ExchangeFailed` (the connection broke or the answer was not HTTP). Timeouts are the
caller's: cancel the request (``trio.move_on_after``); the connection in use is closed.
"""
from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import trio

from kamrouter.modules.http_client.codec import (
    ProtocolError,
    Response,
    ResponseParser,
    encode_request,
)

#: Bytes read per receive: an answer to a routing query fits; larger ones take more reads
#: (reading 64 KB each time would allocate 64 KB per answer).
RECEIVE_SIZE = 16384


class ConnectFailed(Exception):
    """No connection to the server (refused, unreachable, name unknown, TLS failed)."""


class ExchangeFailed(Exception):
    """The connection broke during the exchange, or the server's answer was not HTTP."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int


@lru_cache(maxsize=256)
def split_url(url: str) -> tuple[Origin, str, str]:
    """(origin, Host header value, request target) of an http(s) URL; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"bad port in URL {url!r}") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port), parts.netloc.rpartition("@")[2], target


class _PlainStream:
    """A connected non-blocking TCP socket, driven directly: trio's SocketStream adds a
    scheduling round trip to every send, which a once-per-call exchange feels."""

    __slots__ = ("socket",)

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.socket = sock

    async def send_all(self, data: bytes) -> None:
        sock = self.socket
        while True:
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
            await trio.lowlevel.wait_writable(sock)

    async def receive_some(self, max_bytes: int) -> bytes:
        while True:
            await trio.lowlevel.wait_readable(self.socket)
            try:
                return self.socket.recv(max_bytes)
            except BlockingIOError:  # woken without data after all
                continue


class _Connection:
    __slots__ = ("stream", "socket", "idle_since")

    def __init__(self, stream: _PlainStream | trio.SSLStream[trio.SocketStream],
                 sock: socket.socket | trio.socket.SocketType) -> None:
        self.stream = stream
        #: The TCP socket under the stream: closed directly (no TLS close_notify), as
        #: neither a broken nor a cancelled exchange leaves a state worth a goodbye.
        self.socket = sock
        self.idle_since = 0.0

    def close(self) -> None:
        trio.lowlevel.notify_closing(self.socket)
        self.socket.close()

    async def exchange(self, data: bytes, method: str) -> Response:
        parser = ResponseParser(method)
        answered = False
        try:
            await self.stream.send_all(data)
            while True:
                received = await self.stream.receive_some(RECEIVE_SIZE)
                if not received:
                    if not answered:
                        raise _Unanswered("the server closed the connection without answering")
                    return parser.eof()
                answered = True
                response = parser.feed(bytes(received))
                if response is not None:
                    return response
        except (OSError, trio.BrokenResourceError) as exc:
            if not answered:
                raise _Unanswered(str(exc) or type(exc).__name__) from None
            raise


class _Unanswered(ExchangeFailed):
    """The connection broke before a byte of the answer came (a server closes idle
    keep-alive connections when it likes): on a reused connection, worth asking again."""


class ConnectionPool:
    def __init__(self, *, max_connections: int, max_keepalive: int, keepalive_expiry: float,
                 verify_tls: bool, clock: Callable[[], float] = trio.current_time) -> None:
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self.keepalive_expiry = keepalive_expiry
        self.clock = clock
        self._in_use = 0
        self._slot_freed = trio.lowlevel.ParkingLot()
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._tls: ssl.SSLContext | None = None
        self._verify_tls = verify_tls

    async def request(self, method: str, url: str, headers: list[tuple[str, str]],
                      body: bytes) -> Response:
        """One exchange over an idle connection to the URL's origin, or a new one.

        ``headers`` are sent as given after ``Host`` (and ``Content-Length`` for a body).
        """
        origin, host, target = split_url(url)
        data = encode_request(method, target, [("Host", host), *headers], body)
        while self._in_use >= self.max_connections:
            await self._slot_freed.park()
        self._in_use += 1
        try:
            idle = self._take_idle(origin)
            if idle is not None:
                try:
                    return await self._exchange(idle, origin, data, method)
                except _Unanswered:
                    pass  # closed while idle: once more, on a new connection
            return await self._exchange(await self._connect(origin), origin, data, method)
        finally:
            self._in_use -= 1
            self._slot_freed.unpark()

    async def _exchange(self, conn: _Connection, origin: Origin, data: bytes,
                        method: str) -> Response:
        """One exchange on ``conn``; afterwards it is idle in the pool or closed."""
        try:
            response = await conn.exchange(data, method)
        except BaseException as exc:  # cancelled (timeout) or broken: state unknown
            conn.close()
            if isinstance(exc, (ProtocolError, OSError, trio.BrokenResourceError)):
                raise ExchangeFailed(str(exc) or type(exc).__name__) from None
            raise
        if response.keep_alive and self._idle_count < self.max_keepalive:
            conn.idle_since = self.clock()
            self._idle.setdefault(origin, []).append(conn)
            self._idle_count += 1
        else:
            conn.close()
        return response

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        expired_before = self.clock() - self.keepalive_expiry
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if conn.idle_since >= expired_before:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        try:
            tcp = await trio.open_tcp_stream(origin.host, origin.port)
        except OSError as exc:
            raise ConnectFailed(f"{origin.host}:{origin.port}: {exc.strerror or exc}") from None
        if origin.scheme == "http":
            # TCP_NODELAY (set by trio) stays with the socket.
            plain = socket.socket(fileno=tcp.socket.detach())
            return _Connection(_PlainStream(plain), plain)
        stream = trio.SSLStream(tcp, self._tls_context(), server_hostname=origin.host,
                                https_compatible=True)
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:  # wraps the ssl.SSLError saying why
            await trio.aclose_forcefully(tcp)
            raise ConnectFailed(f"{origin.host}:{origin.port}: TLS: {exc.__cause__ or exc}"
                                ) from None
        return _Connection(stream, tcp.socket)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context()
            if not self._verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls = context
        return self._tls

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        self._idle_count = 0
