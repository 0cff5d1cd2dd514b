"""A keep-alive HTTP/1.1 client on trio and h11: the transport under ``http_client.query``.

Why not httpx: a routing API is asked once per call, and httpx's request machinery (URL and
header models, its connection pool's scheduling) cost 0.7-0.9 ms of CPU per POST to a local
controller, more than routing the call itself; this client does the same exchange for about
0.2 ms (``benchmarks/cps.py --routing api-http`` shows the difference per call).

It keeps what a per-call query needs: one pool of idle connections per origin (bounded, with
an expiry), a bound on connections open at once, TLS through ``trio.SSLStream``, bodies sized
by Content-Length, chunked or connection close (h11). It does not follow redirects (as
Kamailio's http_client by default), speak HTTP/2, use proxies or decompress.

Errors: :class:`ConnectFailed` (refused, unreachable, TLS handshake) and
:class:`ExchangeFailed` (the connection broke or the answer was not HTTP). Timeouts are the
caller's: cancel the request (``trio.move_on_after``); the connection in use is closed.
"""
from __future__ import annotations

import select
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio

#: Bytes read per receive.
RECEIVE_SIZE = 65536


class ConnectFailed(Exception):
    """No connection to the server (refused, unreachable, name unknown, TLS failed)."""


class ExchangeFailed(Exception):
    """The connection broke during the exchange, or the server's answer was not HTTP."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    #: (name lower case, value) as received.
    headers: list[tuple[str, str]]
    body: bytes


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


class _Connection:
    __slots__ = ("stream", "socket", "h11", "idle_since")

    def __init__(self, stream: trio.abc.Stream, socket: trio.socket.SocketType) -> None:
        self.stream = stream
        self.socket = socket
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    async def exchange(self, request: h11.Request, body: bytes) -> Response:
        conn = self.h11
        data = conn.send(request) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await self.stream.send_all(data)
        head: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self.stream.receive_some(RECEIVE_SIZE))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            # h11.InformationalResponse (100 Continue, ...): wait for the final one
        assert head is not None
        headers = [(name.decode("latin-1"), value.decode("latin-1"))
                   for name, value in head.headers]
        return Response(head.status_code, headers, b"".join(chunks))

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def stale(self) -> bool:
        """An idle connection with something to read: the server closed it (or misbehaves)."""
        readable, _, _ = select.select([self.socket], [], [], 0)
        return bool(readable)


class ConnectionPool:
    def __init__(self, *, max_connections: int, max_keepalive: int, keepalive_expiry: float,
                 verify_tls: bool, clock: Callable[[], float] = trio.current_time) -> None:
        self.max_keepalive = max_keepalive
        self.keepalive_expiry = keepalive_expiry
        self.clock = clock
        self._open = trio.Semaphore(max_connections)
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
        sent_headers = [("Host", host), *headers]
        if body or method in ("POST", "PUT", "PATCH"):
            sent_headers.append(("Content-Length", str(len(body))))
        try:
            request = h11.Request(method=method, target=target, headers=sent_headers)
        except h11.LocalProtocolError as exc:
            raise ValueError(f"cannot send this request: {exc}") from None
        async with self._open:
            conn = self._take_idle(origin) or await self._connect(origin)
            try:
                response = await conn.exchange(request, body)
            except BaseException as exc:  # cancelled (timeout) or broken: state unknown
                await trio.aclose_forcefully(conn.stream)
                if isinstance(exc, (trio.BrokenResourceError, trio.ClosedResourceError,
                                    h11.ProtocolError, OSError)):
                    raise ExchangeFailed(str(exc) or type(exc).__name__) from None
                raise
            if conn.reusable and self._idle_count < self.max_keepalive:
                conn.h11.start_next_cycle()
                conn.idle_since = self.clock()
                self._idle.setdefault(origin, []).append(conn)
                self._idle_count += 1
            else:
                await trio.aclose_forcefully(conn.stream)
            return response

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        expired_before = self.clock() - self.keepalive_expiry
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if conn.idle_since >= expired_before and not conn.stale():
                return conn
            conn.socket.close()
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        try:
            tcp = await trio.open_tcp_stream(origin.host, origin.port)
        except OSError as exc:
            raise ConnectFailed(f"{origin.host}:{origin.port}: {exc.strerror or exc}") from None
        if origin.scheme == "http":
            return _Connection(tcp, tcp.socket)
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

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                await trio.aclose_forcefully(conn.stream)
        self._idle.clear()
        self._idle_count = 0
