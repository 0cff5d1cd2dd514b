"""The hand-off between worker processes, over a Unix datagram socket, two kinds:

- a message that arrived at one worker and belongs to another (a reply to a request the
  other forwarded, a CANCEL of its INVITE; over a connection, a reply) is passed on raw,
  with where it came from and the listener it arrived on;
- a message one worker must send over a connection another worker holds (a request to a
  phone or browser connected to the other, :mod:`.holders`) is passed to that worker,
  which writes it on its connection.

Every worker has one: the receiving end of a socket pair the supervisor makes, whose other
end every worker gets to send to it (the supervisor keeps both open: datagrams handed to a
worker being restarted wait for its successor). A pair, not a socket bound to a path that
the others send to: Linux lets a datagram socket queue only ``net.unix.max_dgram_qlen``
datagrams (often 10) from senders other than its peer, and a busy worker would see
hand-offs to it refused; from its peer, only the socket buffer bounds the queue. What goes
over it, one datagram each::

    KH1 <origin worker> <listener index> <source address> <source port>\\n<the message>
    KS1 <origin worker> <transport> <peer address> <peer port>\\n<the message to send>

The listener index counts the listeners, UDP ones first, each kind in ``[core] listen``
order, the same in every worker; the source's transport is its listener's. Anything else
that arrives there (a header that does not parse, an origin or a listener that does not
exist, this very worker as origin) is dropped and counted in ``core:handoff_dropped``, as
is a message to send over a connection this worker no longer holds (the receiver's
business, :class:`~kamrouter.transport.manager.Transports`); what is taken is counted in
``core:handoff_received``, what was passed on in ``core:handoff_sent`` (of it, messages to
send: ``core:handoff_sent_to_connection``; a full socket of the other worker: dropped,
counted). A bug met while writing a handed-over message costs that message
(``core:drops_internal_error_tcp``, logged), never the hand-off loop.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable

import trio

from kamrouter.guard import InputGuard
from kamrouter.net import Endpoint
from kamrouter.stats import StatsRegistry

log = logging.getLogger("kamrouter.transport")

MAGIC = b"KH1 "
#: The kind of hand-off that asks the receiver to send the message on its connection.
SEND_MAGIC = b"KS1 "
#: The transports a message to send may name (those carried on connections).
STREAMS = frozenset((b"tcp", b"tls", b"ws", b"wss"))
#: A header is at most this long (an IPv6 address, two indexes and a port fit easily).
MAX_HEADER = 80
#: A SIP message (``[core] max_message_size`` is at most 65535) and its header.
MAX_DATAGRAM = 65535 + MAX_HEADER
BATCH = 64
SOCKET_BUFFER = 4 * 1024 * 1024

#: ``on_handed_off(data, source, local listener, origin worker)``.
OnHandedOff = Callable[[bytes, Endpoint, Endpoint, int], None]
#: ``on_send(data, peer, origin worker)``: write ``data`` on the connection to ``peer``.
OnSend = Callable[[bytes, Endpoint, int], None]


def encode(origin: int, listener: int, source: Endpoint, data: bytes) -> bytes:
    return b"%s%d %d %s %d\n%s" % (MAGIC, origin, listener, source.host.encode(),
                                   source.port, data)


def encode_send(origin: int, peer: Endpoint, data: bytes) -> bytes:
    return b"%s%d %s %s %d\n%s" % (SEND_MAGIC, origin, peer.proto.encode(),
                                   peer.host.encode(), peer.port, data)


def _header(packet: bytes) -> tuple[bytes, list[bytes], int] | None:
    """(magic, the header's four fields, where the message starts), or None."""
    end = packet.find(b"\n", 0, MAX_HEADER)
    magic = packet[:len(MAGIC)]
    if end < 0 or magic not in (MAGIC, SEND_MAGIC):
        return None
    fields = packet[len(MAGIC):end].split(b" ")
    if len(fields) != 4 or not (fields[0].isdigit() and fields[3].isdigit()):
        return None
    return magic, fields, end + 1


def _host(field: bytes) -> str | None:
    try:
        return str(ipaddress.ip_address(field.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None


def decode(packet: bytes, workers: int, listeners: list[Endpoint]
           ) -> tuple[int, int, Endpoint, bytes] | None:
    """A ``KH1`` hand-off: (origin, listener index, source, message), or None when
    ``packet`` is not one."""
    header = _header(packet)
    if header is None or header[0] != MAGIC or not header[1][1].isdigit():
        return None
    fields, start = header[1], header[2]
    origin, listener, port = int(fields[0]), int(fields[1]), int(fields[3])
    host = _host(fields[2])
    if host is None or origin >= workers or listener >= len(listeners) \
            or not 0 < port < 65536:
        return None
    return origin, listener, Endpoint(listeners[listener].proto, host, port), packet[start:]


def decode_send(packet: bytes, workers: int) -> tuple[int, Endpoint, bytes] | None:
    """A ``KS1`` hand-off: (origin, the connection's peer, message), or None."""
    header = _header(packet)
    if header is None or header[0] != SEND_MAGIC or header[1][1] not in STREAMS:
        return None
    fields, start = header[1], header[2]
    origin, port = int(fields[0]), int(fields[3])
    host = _host(fields[2])
    if host is None or origin >= workers or not 0 < port < 65536:
        return None
    return origin, Endpoint(fields[1].decode(), host, port), packet[start:]


class Handoff:
    """One worker's end: its own socket to receive on (``fd``) and every worker's socket to
    send to it (``peers``, by worker index), all made by the supervisor. ``listeners``
    gives the router's listeners in hand-off order (UDP first; ports known once bound)."""

    def __init__(self, index: int, fd: int, peers: tuple[int, ...],
                 listeners: Callable[[], list[Endpoint]], stats: StatsRegistry) -> None:
        self.index = index
        self.count = len(peers)
        self.listeners = listeners
        self.sock = socket.socket(fileno=fd)
        self._peers = [socket.socket(fileno=peer) for peer in peers]
        for sock in (self.sock, *self._peers):
            sock.setblocking(False)
        self.sent = stats.counter("core", "handoff_sent")
        self.sent_to_connection = stats.counter("core", "handoff_sent_to_connection")
        self.received = stats.counter("core", "handoff_received")
        self.dropped = stats.counter("core", "handoff_dropped")
        #: A bug met writing a handed-over message costs that message, never the loop.
        self.guard = InputGuard("core", stats, log, "drops_internal_error_tcp")

    def send(self, target: int, origin: int, data: bytes, source: Endpoint,
             local: Endpoint) -> None:
        """Pass ``data`` (from ``source``, on listener ``local``) to worker ``target``."""
        try:
            listener = self.listeners().index(local)
        except ValueError:  # not one of our listeners
            self.dropped.value += 1
            return
        self._send(target, encode(origin, listener, source, data))

    def send_over(self, target: int, peer: Endpoint, data: bytes) -> bool:
        """Ask worker ``target`` to write ``data`` on its connection to ``peer``; False
        when the other worker's socket is full (dropped, counted)."""
        if not self._send(target, encode_send(self.index, peer, data)):
            return False
        self.sent_to_connection.value += 1
        return True

    def _send(self, target: int, packet: bytes) -> bool:
        try:
            self._peers[target].send(packet)
        except OSError as exc:  # the other's socket full
            self.dropped.value += 1
            log.debug("hand-off to worker %d failed: %s", target, exc)
            return False
        self.sent.value += 1
        return True

    async def serve(self, on_handed_off: OnHandedOff, on_send: OnSend) -> None:
        sock = self.sock
        while True:
            await trio.lowlevel.wait_readable(sock)
            for _ in range(BATCH):
                try:
                    packet = sock.recv(MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    log.debug("hand-off socket: %s", exc)
                    break
                self._take(packet, on_handed_off, on_send)
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()

    def _take(self, packet: bytes, on_handed_off: OnHandedOff, on_send: OnSend) -> None:
        if packet.startswith(SEND_MAGIC):
            to_send = decode_send(packet, self.count)
            if to_send is not None and to_send[0] != self.index:
                self.received.value += 1
                origin, peer, data = to_send
                try:
                    on_send(data, peer, origin)
                except Exception as exc:  # noqa: BLE001 - last resort, as for a connection
                    self.guard.failed(peer, exc)
                return
        else:
            listeners = self.listeners()
            decoded = decode(packet, self.count, listeners)
            if decoded is not None and decoded[0] != self.index:
                self.received.value += 1
                origin, listener, source, data = decoded
                on_handed_off(data, source, listeners[listener], origin)
                return
        self.dropped.value += 1
        log.debug("hand-off socket: dropping %d bytes that are not a hand-off", len(packet))

    def close(self) -> None:
        for sock in (self.sock, *self._peers):
            sock.close()


def handoff_pair() -> tuple[socket.socket, socket.socket]:
    """A worker's hand-off socket and the one the others send to it through."""
    receiving, sending = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for sock, option in ((receiving, socket.SO_RCVBUF), (sending, socket.SO_SNDBUF)):
        try:  # what one worker may queue for another (the kernel may cap it lower)
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:
            pass
    return receiving, sending
