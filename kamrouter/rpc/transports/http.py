"""HTTP transport: ``POST /RPC`` (JSON-RPC, as Kamailio's xhttp + jsonrpcs) and ``GET /metrics``.

Off unless ``[rpc] http`` is set; a bare port binds loopback only. HTTP/1.1 keep-alive via h11.
As with Kamailio, an RPC error is a 200 response with the error in the JSON body; a
notification (nothing to answer) is a 204.

With ``rpc.http_auth_file`` set, every request needs ``Authorization`` (bearer token or basic
auth, see :mod:`.httpauth`); one without gets 401 before its body is read, is counted in
``rpc:refused_auth``, and its connection is closed. HTTP connections have their own limit
(``rpc.http_max_clients``), apart from the Unix socket's.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import h11
import trio

from kamrouter.net import format_hostport
from kamrouter.rpc.dispatch import Dispatcher
from kamrouter.rpc.registry import RpcError
from kamrouter.rpc.transports.httpauth import CHALLENGE, Credentials
from kamrouter.rpc.transports.limits import RECEIVE_SIZE, Counters, Limits

log = logging.getLogger("kamrouter.rpc")

RPC_PATH = b"/RPC"
METRICS_PATH = b"/metrics"
#: Prometheus text exposition format.
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

#: The text of GET /metrics (asynchronous: a supervisor asks its workers for it).
Metrics = Callable[[], Awaitable[str]]


class _Reject(Exception):
    """Answer with ``status`` and ``text``, then close the connection."""

    def __init__(self, status: int, text: str,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers


@dataclass(frozen=True)
class _Server:
    dispatcher: Dispatcher
    metrics: Metrics | None
    limits: Limits
    counters: Counters
    #: None: no authentication (loopback only, enforced by RpcConfig.validate).
    credentials: Credentials | None


async def serve_http(host: str, port: int, dispatcher: Dispatcher, metrics: Metrics | None,
                     limits: Limits, counters: Counters, credentials: Credentials | None,
                     *, task_status: trio.TaskStatus[list[trio.SocketListener]]
                     = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``host:port``; ``task_status.started`` gets the listeners (bound port)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    server = _Server(dispatcher, metrics, limits, counters, credentials)
    await trio.serve_listeners(partial(_serve_connection, server=server), listeners,
                               task_status=task_status)


async def _serve_connection(stream: trio.SocketStream, *, server: _Server) -> None:
    """One client connection; whatever escapes it (a bug) is answered 500 if possible,
    counted in ``rpc:drops_internal_error`` and logged, and the connection closed."""
    limits = server.limits
    async with stream:
        try:
            limits.http_clients.acquire_nowait()
        except trio.WouldBlock:
            server.counters.refused_clients.value += 1
            log.warning("RPC HTTP: refusing a connection, %d HTTP clients already connected",
                        limits.http_clients.total_tokens)
            await _send_simple(stream, h11.Connection(h11.SERVER), 503, "too many clients\n",
                               limits)
            return
        try:
            await _converse(stream, server)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError) as exc:
            log.debug("RPC HTTP connection ended: %s", exc)
        except Exception as exc:  # noqa: BLE001 - the last-resort guard of this path
            server.counters.guard.failed(f"HTTP client {_peer(stream)}", exc)
            await _send_simple(stream, h11.Connection(h11.SERVER), 500,
                               "internal error; see the router log\n", limits)
        finally:
            limits.http_clients.release()


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "unknown"
    return format_hostport(host, port)


async def _converse(stream: trio.SocketStream, server: _Server) -> None:
    limits = server.limits
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
    while True:
        try:
            request = await _next_event(conn, stream, limits.idle_timeout)
        except h11.RemoteProtocolError as exc:
            await _send_simple(stream, conn, exc.error_status_hint, f"bad request: {exc}\n", limits)
            return
        if not isinstance(request, h11.Request):
            return
        try:
            _authenticate(request, server)
            body = await _read_body(conn, stream, limits)
            status, content_type, payload = await _route(request, body, server.dispatcher,
                                                         server.metrics)
        except _Reject as reject:
            await _send_simple(stream, conn, reject.status, reject.text + "\n", limits,
                               reject.headers)
            return
        headers = [(b"content-length", str(len(payload)).encode())]
        if content_type:
            headers.append((b"content-type", content_type))
        if not await _send(stream, conn, h11.Response(status_code=status, headers=headers),
                           payload, limits):
            return
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        conn.start_next_cycle()


def _authenticate(request: h11.Request, server: _Server) -> None:
    if server.credentials is None:
        return
    authorization = next((value for name, value in request.headers
                          if name == b"authorization"), None)
    if not server.credentials.allows(authorization):
        server.counters.refused_auth.value += 1
        log.warning("RPC HTTP: refusing a request without valid credentials")
        raise _Reject(401, "authentication required: Authorization: Bearer <token> or Basic",
                      ((b"www-authenticate", CHALLENGE),))


async def _next_event(conn: h11.Connection, stream: trio.SocketStream,
                      timeout: float
                      ) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED] | None:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = None
        with trio.move_on_after(timeout):
            data = await stream.receive_some(RECEIVE_SIZE)
        if data is None:
            return None
        conn.receive_data(data)


async def _read_body(conn: h11.Connection, stream: trio.SocketStream,
                     limits: Limits) -> bytes:
    body = bytearray()
    while True:
        event = await _next_event(conn, stream, limits.client_timeout)
        if isinstance(event, h11.Data):
            body += event.data
            if len(body) > limits.max_request_size:
                raise _Reject(413, f"request body larger than {limits.max_request_size} bytes")
        elif isinstance(event, h11.EndOfMessage):
            return bytes(body)
        else:
            raise _Reject(408, "request body incomplete")


async def _route(request: h11.Request, body: bytes, dispatcher: Dispatcher,
                 metrics: Metrics | None) -> tuple[int, bytes | None, bytes]:
    path = request.target.split(b"?", 1)[0]
    if path == RPC_PATH or path.startswith(RPC_PATH + b"/"):
        if request.method != b"POST":
            raise _Reject(405, "use POST for JSON-RPC")
        reply = await dispatcher.handle(body)
        if reply is None:
            return 204, None, b""
        return 200, b"application/json", reply
    if path == METRICS_PATH and metrics is not None:
        if request.method not in (b"GET", b"HEAD"):
            raise _Reject(405, "use GET for metrics")
        try:
            text = (await metrics()).encode()
        except RpcError as exc:  # a supervisor whose worker 0 cannot answer right now
            raise _Reject(503, f"statistics unavailable: {exc.message}") from None
        return 200, METRICS_TYPE, b"" if request.method == b"HEAD" else text
    raise _Reject(404, "not found: POST /RPC for JSON-RPC"
                  + (", GET /metrics for statistics" if metrics is not None else ""))


async def _send(stream: trio.SocketStream, conn: h11.Connection, response: h11.Response,
                payload: bytes, limits: Limits) -> bool:
    with trio.move_on_after(limits.client_timeout):
        data = conn.send(response) + (conn.send(h11.Data(data=payload)) if payload else b"")
        await stream.send_all(data + conn.send(h11.EndOfMessage()))
        return True
    log.warning("RPC HTTP client did not read its reply within %ss", limits.client_timeout)
    return False


async def _send_simple(stream: trio.SocketStream, conn: h11.Connection, status: int, text: str,
                       limits: Limits, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    payload = text.encode()
    response = h11.Response(status_code=status, headers=[
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"), *headers])
    try:
        await _send(stream, conn, response, payload, limits)
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
        pass
