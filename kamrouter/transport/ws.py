"""SIP over WebSocket (RFC 7118) for ``ws:`` and ``wss:`` listeners, sans-IO on wsproto.

A :class:`WsCodec` takes the place of the stream framer on one accepted connection: bytes
from the socket go in (``feed``), whole SIP messages come out (``next_message``, one per
WebSocket message, as RFC 7118 requires), and what the codec must write itself (the upgrade
answer, pongs, close frames) waits in ``take_output``. The HTTP upgrade is accepted only for
the ``sip`` subprotocol, from an allowed Origin (``[websocket] allowed_origins``; empty: any),
and refused with a 4xx otherwise. A message over ``max_message_size`` closes the connection
with code 1009; a protocol error with 1002. Outgoing SIP is framed as a text message (binary
when it is not UTF-8). kamrouter never opens WebSocket connections itself: browsers connect
to it, and requests for them go back over their own connection.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message, Ping,
                            RejectConnection, RejectData, Request, TextMessage)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from kamrouter.config import Range, range_problems

SUBPROTOCOL = "sip"
#: WebSocket close codes (RFC 6455 §7.4.1).
CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG = 1000, 1002, 1009
#: Longest upgrade request (h11's own default bound).
MAX_UPGRADE = 16384
#: The answer to an upgrade request that does not parse.
_BAD_UPGRADE = (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n")


@dataclass
class WebsocketConfig:
    """The ``[websocket]`` section."""

    #: Origins browsers may connect from, e.g. ``["https://phone.example.com"]``; empty:
    #: any (a client that sends no Origin, such as a softphone, is always let in).
    allowed_origins: list[str] = field(default_factory=list)
    #: Largest SIP message in one WebSocket message, bytes.
    max_message_size: int = 65535
    #: Seconds of silence after which the router pings a connection (0: never).
    keepalive_interval: int = 30

    def validate(self) -> list[str]:
        problems = range_problems(self, {"max_message_size": Range(512, 1 << 20, "bytes"),
                                         "keepalive_interval": Range(0, 3600, "s")})
        for i, origin in enumerate(self.allowed_origins):
            if "://" not in origin:
                problems.append(f"allowed_origins[{i}]: expected scheme://host[:port], "
                                f"got {origin!r}")
        return problems


class WsClosed(Exception):
    """The WebSocket connection is over (closed by the peer, or by us after an error)."""


class WsCodec:
    """One server-side WebSocket connection carrying SIP."""

    keepalives = 0  # the stream framer's CRLF pings; WebSocket has its own

    def __init__(self, config: WebsocketConfig) -> None:
        self.config = config
        self._ws = WSConnection(ConnectionType.SERVER)
        self._out = bytearray()
        self._parts: list[bytes] = []
        self._size = 0
        self._messages: deque[bytes] = deque()
        #: The upgrade request until its end arrived.
        self._head = bytearray()
        #: The Origin the client sent (for logs and ``ws.dump``).
        self.origin: str | None = None

    @property
    def open(self) -> bool:
        return self._ws.state is ConnectionState.OPEN

    @property
    def in_message(self) -> bool:
        """The upgrade, or a WebSocket message, has begun and is not whole yet (the
        connection's ``msg_read_timeout`` clock runs meanwhile)."""
        return self._ws.state is ConnectionState.CONNECTING or bool(self._parts)

    def feed(self, data: bytes | bytearray) -> None:
        """Bytes from the socket. Raises :class:`WsClosed` when the connection
        is over; its close frame, if any, is in :meth:`take_output`."""
        try:
            if self._ws.state is ConnectionState.CONNECTING:
                # wsproto drops what follows the upgrade request in the same read: hand it
                # only the request (a GET has no body), and the frames after the accept.
                self._head += data
                end = self._head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._head) > MAX_UPGRADE:
                        raise ValueError(f"upgrade request over {MAX_UPGRADE} bytes")
                    return
                data, head = self._head[end + 4:], bytes(self._head[:end + 4])
                self._head = bytearray()
                self._receive(head)
                if not data:
                    return
            self._receive(bytes(data))
        except (RemoteProtocolError, LocalProtocolError, ValueError) as exc:
            # wsproto lets some errors of hostile bytes through undecorated (a header that
            # is not ASCII: UnicodeDecodeError); each ends this connection, none the router.
            self._fail(CLOSE_PROTOCOL_ERROR, str(exc) or type(exc).__name__)

    def _receive(self, data: bytes) -> None:
        self._ws.receive_data(data)
        for event in self._ws.events():
            self._handle(event)

    def next_message(self) -> bytes | None:
        return self._messages.popleft() if self._messages else None

    def take_output(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def encode(self, sip: bytes) -> bytes:
        """One outgoing SIP message as one WebSocket message."""
        if not self.open:
            return b""
        try:
            return self._ws.send(TextMessage(data=sip.decode()))
        except UnicodeDecodeError:
            return self._ws.send(BytesMessage(data=sip))

    def ping(self) -> bytes:
        return self._ws.send(Ping(payload=b"kamrouter")) if self.open else b""

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
        if not self.open:
            return b""
        return self._ws.send(CloseConnection(code=code, reason=reason))

    # -- events ----------------------------------------------------------------------------
    def _handle(self, event: object) -> None:
        if isinstance(event, Request):
            self._upgrade(event)
        elif isinstance(event, Message):
            self._message_part(event)
        elif isinstance(event, Ping):
            self._out += self._ws.send(event.response())
        elif isinstance(event, CloseConnection):
            if self._ws.state is not ConnectionState.CLOSED:
                self._out += self._ws.send(event.response())
            raise WsClosed(f"closed by the peer ({event.code} {event.reason or ''})".rstrip())

    def _upgrade(self, request: Request) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in request.extra_headers}
        self.origin = headers.get("origin")
        allowed = self.config.allowed_origins
        if self.origin is not None and allowed and self.origin not in allowed:
            self._reject(403, f"origin {self.origin} is not allowed")
        if SUBPROTOCOL not in request.subprotocols:
            self._reject(400, "the sip subprotocol (RFC 7118) is required")
        self._out += self._ws.send(AcceptConnection(subprotocol=SUBPROTOCOL))

    def _reject(self, status: int, why: str) -> None:
        body = why.encode()
        self._out += self._ws.send(RejectConnection(
            status_code=status, headers=[(b"content-type", b"text/plain"),
                                         (b"content-length", str(len(body)).encode())],
            has_body=True))
        self._out += self._ws.send(RejectData(data=body))
        raise WsClosed(f"upgrade refused: {why}")

    def _message_part(self, event: Message) -> None:  # type: ignore[type-arg]
        data = event.data.encode("utf-8", "surrogateescape") if isinstance(event.data, str) \
            else bytes(event.data)
        self._size += len(data)
        if self._size > self.config.max_message_size:
            self._fail(CLOSE_TOO_BIG, f"message over {self.config.max_message_size} bytes")
        self._parts.append(data)
        if event.message_finished:
            self._messages.append(b"".join(self._parts))
            self._parts.clear()
            self._size = 0

    def _fail(self, code: int, why: str) -> None:
        """Close with ``code`` (a broken upgrade: answer 400) and end the connection."""
        if self._ws.state is ConnectionState.CONNECTING:
            self._out += _BAD_UPGRADE
        else:
            self._out += self.close(code, why[:120])
        raise WsClosed(why)
