"""The hand-off between worker processes: a datagram that arrived at one worker and belongs
to another (a reply to a request the other forwarded, a CANCEL of its INVITE) is passed on
raw, with where it came from and the listener it arrived on, over a Unix datagram socket.

Every worker has one: the receiving end of a socket pair the supervisor makes, whose other
end every worker gets to send to it (the supervisor keeps both open: datagrams handed to a
worker being restarted wait for its successor). A pair, not a socket bound to a path that
the others send to: Linux lets a datagram socket queue only ``net.unix.max_dgram_qlen``
datagrams (often 10) from senders other than its peer, and a busy worker would see
hand-offs to it refused; from its peer, only the socket buffer bounds the queue. What goes
over it, one datagram each::

    KH1 <origin worker> <listener index> <source address> <source port>\\n<the datagram>

The listener index counts the UDP listeners in ``[core] listen`` order, the same in every
worker. Anything else that arrives there (a header that does not parse, an origin or a
listener that does not exist, this very worker as origin) is dropped and counted in
``core:handoff_dropped``; what is taken in ``core:handoff_received``, what was passed on in
``core:handoff_sent`` (a full socket of the other worker: dropped, counted).
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable

import trio

from kamrouter.net import Endpoint
from kamrouter.stats import StatsRegistry

log = logging.getLogger("kamrouter.transport")

MAGIC = b"KH1 "
#: A header is at most this long (an IPv6 address, two indexes and a port fit easily).
MAX_HEADER = 80
#: A SIP datagram (``[core] max_message_size`` is at most 65535) and its header.
MAX_DATAGRAM = 65535 + MAX_HEADER
BATCH = 64
SOCKET_BUFFER = 4 * 1024 * 1024

#: ``on_handed_off(data, source, local listener, origin worker)``.
OnHandedOff = Callable[[bytes, Endpoint, Endpoint, int], None]


def encode(origin: int, listener: int, source: Endpoint, data: bytes) -> bytes:
    return b"%s%d %d %s %d\n%s" % (MAGIC, origin, listener, source.host.encode(),
                                   source.port, data)


def decode(packet: bytes, workers: int, listeners: int
           ) -> tuple[int, int, Endpoint, bytes] | None:
    """(origin, listener index, source, datagram), or None when ``packet`` is not one."""
    end = packet.find(b"\n", 0, MAX_HEADER)
    if not packet.startswith(MAGIC) or end < 0:
        return None
    fields = packet[len(MAGIC):end].split(b" ")
    if len(fields) != 4 or not all(f.isdigit() for f in (fields[0], fields[1], fields[3])):
        return None
    origin, listener, port = int(fields[0]), int(fields[1]), int(fields[3])
    try:
        host = str(ipaddress.ip_address(fields[2].decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None
    if origin >= workers or listener >= listeners or not 0 < port < 65536:
        return None
    return origin, listener, Endpoint("udp", host, port), packet[end + 1:]


class Handoff:
    """One worker's end: its own socket to receive on (``fd``) and every worker's socket to
    send to it (``peers``, by worker index), all made by the supervisor."""

    def __init__(self, index: int, fd: int, peers: tuple[int, ...],
                 listeners: list[Endpoint], stats: StatsRegistry) -> None:
        self.index = index
        self.count = len(peers)
        self.listeners = listeners
        self.sock = socket.socket(fileno=fd)
        self._peers = [socket.socket(fileno=peer) for peer in peers]
        for sock in (self.sock, *self._peers):
            sock.setblocking(False)
        self.sent = stats.counter("core", "handoff_sent")
        self.received = stats.counter("core", "handoff_received")
        self.dropped = stats.counter("core", "handoff_dropped")

    def send(self, target: int, origin: int, data: bytes, source: Endpoint,
             local: Endpoint) -> None:
        """Pass ``data`` (from ``source``, on listener ``local``) to worker ``target``."""
        try:
            listener = self.listeners.index(local)
            self._peers[target].send(encode(origin, listener, source, data))
        except (ValueError, OSError) as exc:  # not a UDP listener; the other's socket full
            self.dropped.value += 1
            log.debug("hand-off to worker %d failed: %s", target, exc)
            return
        self.sent.value += 1

    async def serve(self, on_handed_off: OnHandedOff) -> None:
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
                decoded = decode(packet, self.count, len(self.listeners))
                if decoded is None or decoded[0] == self.index:
                    self.dropped.value += 1
                    log.debug("hand-off socket: dropping %d bytes that are not a hand-off",
                              len(packet))
                    continue
                self.received.value += 1
                origin, listener, source, data = decoded
                on_handed_off(data, source, self.listeners[listener], origin)
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()

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
