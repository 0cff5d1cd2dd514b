"""UDP listener: one non-blocking socket, drained in batches on each wake-up.

No task per datagram: the receive loop hands every datagram to the pipeline synchronously,
and sends are plain non-blocking ``sendto`` calls (a full socket buffer drops and counts).
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import trio

from kamrouter.net import Endpoint
from kamrouter.stats import StatsRegistry

log = logging.getLogger("kamrouter.transport")

#: Datagrams handled per wake-up before yielding to timers and other sockets.
BATCH = 64
SOCKET_BUFFER = 4 * 1024 * 1024


class UdpSocket:
    """``endpoint`` bound here, or ``bound``: a socket bound already (a worker's share of
    a listener, see :mod:`kamrouter.transport.shared`)."""

    def __init__(self, endpoint: Endpoint, stats: StatsRegistry,
                 bound: socket.socket | None = None) -> None:
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        self.sock = bound if bound is not None else socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            except OSError:
                pass
        if bound is None:
            self.sock.bind((endpoint.host, endpoint.port))
        port = self.sock.getsockname()[1]
        self.endpoint = Endpoint("udp", endpoint.host, port)
        self.family = family
        self.send_errors = stats.counter("udp", "send_errors")

    async def serve(self, on_datagram: Callable[[bytes, Endpoint, Endpoint], None]) -> None:
        sock = self.sock
        recvfrom = sock.recvfrom
        local = self.endpoint
        wait_readable = trio.lowlevel.wait_readable
        checkpoint = trio.lowlevel.cancel_shielded_checkpoint
        readable = False
        while True:
            if not readable:
                await wait_readable(sock)
            readable = True
            for _ in range(BATCH):
                try:
                    data, addr = recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    readable = False
                    break
                except OSError as exc:  # e.g. ICMP port unreachable reported on Linux
                    log.debug("udp %s: %s", local, exc)
                    continue
                on_datagram(data, Endpoint("udp", addr[0], addr[1]), local)
            else:
                # Still busy: let timers and TCP run, then read on without asking epoll.
                await checkpoint()

    def send(self, data: bytes, dest: Endpoint) -> None:
        try:
            self.sock.sendto(data, (dest.host, dest.port))
        except (BlockingIOError, OSError) as exc:
            self.send_errors.value += 1
            log.debug("udp send to %s failed: %s", dest, exc)

    def close(self) -> None:
        self.sock.close()
