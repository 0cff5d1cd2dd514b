"""The sockets the supervisor binds for worker processes (kamrouter/transport/shared.py):
one SO_REUSEPORT group per listener, and Linux's claim the design rests on, checked on the
real kernel: every datagram from one source address and port reaches the same member."""
from __future__ import annotations

import select
import socket
import time

from kamrouter.net import Endpoint
from kamrouter.transport.shared import WorkerSockets, bind_worker_sockets

SOURCES, PER_SOURCE = 16, 5


def test_each_source_sticks_to_one_worker_socket() -> None:
    specs, opened = bind_worker_sockets([Endpoint("udp", "127.0.0.1", 0)], 2)
    try:
        (listener,) = specs[0].udp
        members = {socket.socket(fileno=socket.dup(spec.udp[listener][0])): spec.index
                   for spec in specs}
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SOURCES)]
        for client in clients:
            client.bind(("127.0.0.1", 0))
            for n in range(PER_SOURCE):
                client.sendto(f"{client.getsockname()[1]} {n}".encode(),
                              ("127.0.0.1", listener.port))
        seen: dict[int, set[int]] = {}
        deadline = time.monotonic() + 20
        while sum(len(v) for v in seen.values()) < SOURCES and time.monotonic() < deadline:
            ready, _, _ = select.select(list(members), [], [], 1)
            for member in ready:
                data, (_, port) = member.recvfrom(100)
                seen.setdefault(port, set()).add(members[member])
        for member in members:  # drain what select did not need to wake up for
            member.setblocking(False)
            try:
                while True:
                    _, (_, port) = member.recvfrom(100)
                    seen.setdefault(port, set()).add(members[member])
            except BlockingIOError:
                pass
        assert len(seen) == SOURCES
        assert all(len(workers) == 1 for workers in seen.values()), seen
        for sock in [*members, *clients]:
            sock.close()
    finally:
        for sock in opened:
            sock.close()


def test_workers_share_listeners_and_each_has_its_own_reply_socket() -> None:
    specs, opened = bind_worker_sockets(
        [Endpoint("udp", "127.0.0.1", 0), Endpoint("tcp", "127.0.0.1", 0)], 3)
    try:
        assert [spec.listens for spec in specs] == [specs[0].listens] * 3
        assert all(e.port != 0 for e in specs[0].listens)
        replies = specs[0].reply_endpoints
        assert len(set(replies)) == 3 and all(spec.reply_endpoints == replies for spec in specs)
        own = []
        for spec in specs:
            with socket.socket(fileno=socket.dup(spec.udp[specs[0].listens[0]][1])) as sock:
                own.append(sock.getsockname())
        assert [("127.0.0.1", e.port) for e in replies] == own
        assert [spec.own_replies for spec in specs] == [(e,) for e in replies]
        assert len({fd for spec in specs for fd in spec.fds}) == 3 * 3
        assert WorkerSockets.from_json(specs[1].to_json()) == specs[1]
    finally:
        for sock in opened:
            sock.close()
