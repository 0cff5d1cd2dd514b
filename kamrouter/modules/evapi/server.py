"""The evapi TCP event socket: clients, tags, bounded send queues, request/reply correlation.

SIP processing never waits for a client: events go into a bounded per-client queue with
``send_nowait`` (a full queue drops the event and counts it), and one writer task per client
drains its queue. A write that takes longer than ``send_timeout`` marks the client dead and
closes it. This is the answer to Kamailio's issue #4603 (blocking writes stalling workers).

A message from a client that is a JSON object carrying the id of a pending request
(``"id": "<tindex>:<tlabel>"`` or ``"tindex"`` + ``"tlabel"``) wakes that request; every other
message is handed to the ``evapi:message-received`` event. JSON is read with
:func:`kamrouter.boundedjson.loads`: a message past the depth or integer limits is dropped.

Connections are bounded by ``max_clients`` and ``max_clients_per_ip``, closed after
``idle_timeout`` without a byte from the client, and, with a shared secret, must send it as
their first message within ``handshake_timeout``; until then they are not clients (no
events, no ``connection-new``). Whatever escapes a connection's handling (a bug, or a socket
that died before it was looked at) closes that connection only: logged with the client's
address and counted in ``evapi:drops_internal_error``.

With several workers this server runs in worker 0, and its hub (:mod:`.hub`) hears of
clients that come, go or are tagged (``on_clients_changed``) and takes the messages that
answer another worker's request (``answer_elsewhere``).
"""
from __future__ import annotations

import contextvars
import hmac
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import trio

from kamrouter import boundedjson
from kamrouter.guard import InputGuard
from kamrouter.modules.evapi.config import EvapiConfig
from kamrouter.modules.evapi.framing import (
    Decoder,
    FramingError,
    NetstringDecoder,
    RawDecoder,
    encode_netstring,
)
from kamrouter.stats import Counter, StatsRegistry

log = logging.getLogger("kamrouter.evapi")

#: The client whose event hook is running (for set_tag/close in evapi:* hooks).
current_client: contextvars.ContextVar[Client | None] = contextvars.ContextVar(
    "evapi_client", default=None)

MAX_TAG_LENGTH = 63
#: Queued frames are written together up to this many bytes.
BATCH_BYTES = 65536


class NoController(Exception):
    """No connected client could take the request (none connected, or all queues full)."""


class ControllerGone(Exception):
    """The last connected client went away while a request was waiting for its answer."""


@dataclass(eq=False)
class Client:
    conidx: int
    host: str
    port: int
    stream: trio.SocketStream
    outbox: trio.MemorySendChannel[bytes]
    inbox: trio.MemoryReceiveChannel[bytes]
    tag: str = ""
    #: False until the shared secret was received (always True without one).
    admitted: bool = True
    sent: int = 0
    dropped: int = 0
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    def enqueue(self, frame: bytes) -> bool:
        try:
            self.outbox.send_nowait(frame)
        except trio.WouldBlock:
            self.dropped += 1
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def close(self) -> None:
        self.cancel_scope.cancel()

    def describe(self) -> dict[str, Any]:
        return {"conidx": self.conidx, "srcaddr": self.host, "srcport": self.port,
                "tag": self.tag, "queued": self.inbox.statistics().current_buffer_used,
                "sent": self.sent, "dropped": self.dropped}


class Waiter:
    """A request waiting for its answer."""

    __slots__ = ("event", "reply", "gone", "failure")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: dict[str, Any] | None = None
        self.gone = False
        #: Why it reached no client (said by worker 0, for a request of another worker).
        self.failure: str | None = None

    async def answer(self, ident: str, timeout: float, timeouts: Counter) -> dict[str, Any]:
        """The answer, once it comes within ``timeout``; else why none will (counted in
        ``timeouts`` when it is the time)."""
        with trio.move_on_after(timeout):
            await self.event.wait()
        if self.reply is not None:
            return self.reply
        if self.failure is not None:
            raise NoController(self.failure)
        if self.gone:
            raise ControllerGone("evapi client disconnected before answering")
        timeouts.value += 1
        raise trio.TooSlowError(f"no evapi answer for {ident} within {timeout:g} s")


def fail_waiters(waiters: dict[str, Waiter]) -> None:
    """The last client is gone: no answer will come to those still waiting."""
    for waiter in waiters.values():
        if waiter.reply is None:
            waiter.gone = True
            waiter.event.set()


def _batch(first: bytes, inbox: trio.MemoryReceiveChannel[bytes]) -> list[bytes]:
    """``first`` and the frames queued behind it, up to :data:`BATCH_BYTES` (no waiting)."""
    frames, size = [first], len(first)
    while size < BATCH_BYTES:
        try:
            frame = inbox.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break
        frames.append(frame)
        size += len(frame)
    return frames


def correlation_id(message: dict[str, Any]) -> str | None:
    """``"<tindex>:<tlabel>"`` from a controller message's ``id`` or ``tindex``/``tlabel``."""
    ident = message.get("id")
    if isinstance(ident, (str, int)) and not isinstance(ident, bool):
        return str(ident)
    tindex, tlabel = message.get("tindex"), message.get("tlabel")
    if tindex is not None and tlabel is not None:
        return f"{tindex}:{tlabel}"
    return None


class EvapiServer:
    """Accepts controller connections and moves events between them and the router."""

    def __init__(self, config: EvapiConfig, *, stats: StatsRegistry,
                 emit: Callable[..., None]) -> None:
        self.config = config
        self.max_clients = config.max_clients
        self.queue_size = config.queue_size
        self.send_timeout = config.send_timeout
        self.netstrings = config.netstring_format
        self.max_message_size = config.max_message_size
        self.json_limits = config.json_limits()
        #: The shared secret clients must send first (None: no handshake).
        self.secret: bytes | None = None
        self.emit = emit
        self._slots: list[Client | None] = [None] * config.max_clients
        self._waiters: dict[str, Waiter] = {}
        self.address: tuple[str, int] | None = None
        #: Called when a client comes, goes or is tagged (worker 0 tells the others).
        self.on_clients_changed: Callable[[], None] = lambda: None
        #: ``(id, message)``: True when another worker waits for the message carrying ``id``
        #: and has been given it (:mod:`.hub`).
        self.answer_elsewhere: Callable[[str, bytes], bool] = lambda ident, message: False
        self.sent = stats.counter("evapi", "sent")
        self.received = stats.counter("evapi", "received")
        self.dropped = stats.counter("evapi", "dropped")
        self.timeouts = stats.counter("evapi", "timeouts")
        self.refused_clients = stats.counter("evapi", "refused_clients")
        self.refused_auth = stats.counter("evapi", "refused_auth")
        self.refused_json = stats.counter("evapi", "refused_json_limit")
        self.closed_idle = stats.counter("evapi", "closed_idle")
        self.guard = InputGuard("evapi", stats, log)
        stats.gauge("evapi", "clients", lambda: sum(1 for _ in self.clients()))

    # -- listening -------------------------------------------------------------------------
    async def listen(self, nursery: trio.Nursery, host: str, port: int) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.address = listeners[0].socket.getsockname()[:2]
        nursery.start_soon(trio.serve_listeners, self._serve, listeners)
        log.info("evapi listening on %s:%d", *self.address)

    def set_tag(self, client: Client, tag: str) -> None:
        client.tag = tag
        self.on_clients_changed()

    def clients(self, tag: str | None = None) -> Iterator[Client]:
        """The admitted clients (with ``tag``)."""
        for client in self._slots:
            if client is not None and client.admitted and (tag is None or client.tag == tag):
                yield client

    # -- sending ---------------------------------------------------------------------------
    def frame(self, data: bytes) -> bytes:
        return encode_netstring(data) if self.netstrings else data

    def send(self, data: bytes, tag: str | None = None, *, first_only: bool = False) -> int:
        """Queue ``data`` for every client (with ``tag``), or the first one; return how many."""
        frame = self.frame(data)
        queued = 0
        for client in self.clients(tag):
            if client.enqueue(frame):
                queued += 1
                if first_only:
                    break
            else:
                self.dropped.value += 1
        if not queued and not any(True for _ in self.clients(tag)):
            self.dropped.value += 1
        return queued

    def why_unsent(self, tag: str | None) -> str:
        """Why a request for the clients (with ``tag``) was queued for none."""
        return ("evapi client queues are full" if any(True for _ in self.clients(tag))
                else "no evapi client connected")

    def waiting(self, ident: str) -> bool:
        """A request of this process with ``ident`` waits for its answer."""
        return ident in self._waiters

    async def request(self, ident: str, data: bytes, timeout: float, tag: str | None = None,
                      ) -> dict[str, Any]:
        """Send ``data`` and wait for the message carrying ``ident``.

        Raises :class:`NoController` at once when nobody can take it, :class:`ControllerGone`
        when the last client disconnects meanwhile and ``trio.TooSlowError`` after ``timeout``.
        """
        if ident in self._waiters:
            raise ValueError(f"evapi: a request with id {ident!r} is already waiting")
        waiter = self._waiters[ident] = Waiter()
        try:
            if not self.send(data, tag, first_only=tag is not None):
                raise NoController(self.why_unsent(tag))
            return await waiter.answer(ident, timeout, self.timeouts)
        finally:
            del self._waiters[ident]

    # -- one connection --------------------------------------------------------------------
    async def _serve(self, stream: trio.SocketStream) -> None:
        """One connection, under the last-resort guard of the evapi input path."""
        source = "unknown client"
        try:
            host, port = stream.socket.getpeername()[:2]
            source = f"{host}:{port}"
            await self._converse(stream, host, port)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            # e.g. reset before we looked at it (getpeername: ENOTCONN), or mid-handshake
            log.debug("evapi: connection from %s gone: %s", source, exc)
        except Exception as exc:  # noqa: BLE001 - the last-resort guard of this path
            self.guard.failed(source, exc)
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def _refusal(self, host: str) -> str | None:
        """Why a new connection from ``host`` is refused, or None."""
        if None not in self._slots:
            return f"max_clients={self.max_clients} reached"
        same_host = sum(1 for client in self._slots if client is not None and client.host == host)
        if same_host >= self.config.max_clients_per_ip:
            return f"max_clients_per_ip={self.config.max_clients_per_ip} reached"
        return None

    async def _converse(self, stream: trio.SocketStream, host: str, port: int) -> None:
        refusal = self._refusal(host)
        if refusal is not None:
            self.refused_clients.value += 1
            log.warning("evapi: refusing %s:%d, %s", host, port, refusal)
            return
        conidx = self._slots.index(None)
        outbox, inbox = trio.open_memory_channel[bytes](self.queue_size)
        client = Client(conidx, host, port, stream, outbox, inbox,
                        admitted=self.secret is None)
        self._slots[conidx] = client
        try:
            with client.cancel_scope:
                decoder: Decoder = (NetstringDecoder(self.max_message_size) if self.netstrings
                                    else RawDecoder())
                pending = await self._handshake(client, decoder) if not client.admitted else []
                if not client.admitted:
                    return
                self.on_clients_changed()
                self._emit_for(client, "evapi:connection-new")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write, client, nursery.cancel_scope)
                    for message in pending:
                        self._receive(client, message)
                    await self._read(client, decoder)
                    nursery.cancel_scope.cancel()
        finally:
            self._slots[conidx] = None
            outbox.close()
            if client.admitted:
                self.on_clients_changed()
                if not any(True for _ in self.clients()):
                    fail_waiters(self._waiters)
                self._emit_for(client, "evapi:connection-closed")

    async def _handshake(self, client: Client, decoder: Decoder) -> list[bytes]:
        """Wait for the shared secret as the first message; admit the client if it matches.

        Returns the messages that came after the secret in the same read."""
        assert self.secret is not None
        messages: list[bytes] = []
        with trio.move_on_after(self.config.handshake_timeout):
            while not messages:
                data = await client.stream.receive_some(65536)
                if not data:
                    return []
                try:
                    messages = decoder.feed(data)
                except FramingError as exc:
                    log.warning("evapi: client %s:%d before the handshake: %s; closing",
                                client.host, client.port, exc)
                    break
        if messages and hmac.compare_digest(messages[0].strip(), self.secret):
            client.admitted = True
            return messages[1:]
        self.refused_auth.value += 1
        log.warning("evapi: closing %s:%d: %s", client.host, client.port,
                    "wrong shared secret" if messages else
                    f"no shared secret within {self.config.handshake_timeout:g} s")
        return []

    async def _write(self, client: Client, connection: trio.CancelScope) -> None:
        async for frame in client.inbox:
            frames = _batch(frame, client.inbox)  # under load: one write for many events
            with trio.move_on_after(self.send_timeout) as deadline:
                try:
                    await client.stream.send_all(b"".join(frames))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
            if deadline.cancelled_caught:
                log.warning("evapi: client %d (%s:%d) did not take data for %g s, closing",
                            client.conidx, client.host, client.port, self.send_timeout)
                break
            client.sent += len(frames)
            self.sent.value += len(frames)
        connection.cancel()

    async def _read(self, client: Client, decoder: Decoder) -> None:
        idle = self.config.idle_timeout or float("inf")
        while True:
            data = None
            with trio.move_on_after(idle):
                try:
                    data = await client.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            if data is None:
                self.closed_idle.value += 1
                log.info("evapi: client %d (%s:%d) sent nothing for %g s, closing",
                         client.conidx, client.host, client.port, idle)
                return
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except FramingError as exc:
                log.warning("evapi: client %d (%s:%d): %s; closing", client.conidx,
                            client.host, client.port, exc)
                return
            for message in messages:
                self._receive(client, message)

    def _receive(self, client: Client, message: bytes) -> None:
        self.received.value += 1
        decoded: Any = None
        if message.lstrip()[:1] == b"{":
            try:
                decoded = boundedjson.loads(message, self.json_limits)
            except boundedjson.JsonLimitError as exc:
                self.refused_json.value += 1
                log.warning("evapi: client %d (%s:%d): dropping a message: %s",
                            client.conidx, client.host, client.port, exc)
                return
            except ValueError:
                decoded = None
        if isinstance(decoded, dict):
            ident = correlation_id(decoded)
            waiter = self._waiters.get(ident) if ident is not None else None
            if waiter is not None and waiter.reply is None:
                waiter.reply = decoded
                waiter.event.set()
                return
            if ident is not None and self.answer_elsewhere(ident, message):
                return
        self._emit_for(client, "evapi:message-received",
                       msg=message.decode("utf-8", "replace"), json=decoded)

    def _emit_for(self, client: Client, event: str, **data: Any) -> None:
        token = current_client.set(client)
        try:
            self.emit(event, srcaddr=client.host, srcport=client.port, conidx=client.conidx,
                      tag=client.tag, **data)
        finally:
            current_client.reset(token)
