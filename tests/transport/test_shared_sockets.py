"""The sockets the supervisor binds for worker processes (kamrouter/transport/shared.py):
one SO_REUSEPORT group per listener, a hand-off socket per worker (and the header of what
goes over it, kamrouter/transport/handoff.py), and Linux's claim the design rests on, checked on the
real kernel: every datagram from one source address and port reaches the same member."""
from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kamrouter.net import Endpoint
from kamrouter.transport import handoff
from kamrouter.transport.shared import WorkerSockets, bind_worker_sockets

SOURCES, PER_SOURCE = 16, 5


@contextmanager
def bound(listens: list[Endpoint], workers: int) -> Iterator[list[WorkerSockets]]:
    """Every worker's sockets as the supervisor binds them, closed after the test."""
    specs, opened = bind_worker_sockets(listens, workers)
    try:
        yield specs
    finally:
        for sock in opened:
            sock.close()


def test_each_source_sticks_to_one_worker_socket() -> None:
    with bound([Endpoint("udp", "127.0.0.1", 0)], 2) as specs:
        (listener,) = specs[0].udp
        members = {socket.socket(fileno=socket.dup(spec.udp[listener])): spec.index
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


def test_workers_share_listeners_and_each_has_a_handoff_socket() -> None:
    with bound(
        [Endpoint("udp", "127.0.0.1", 0), Endpoint("tcp", "127.0.0.1", 0)], 3) as specs:
        assert [spec.listens for spec in specs] == [specs[0].listens] * 3
        assert all(e.port != 0 for e in specs[0].listens)
        peers = specs[0].handoff_peers
        assert len(peers) == 3 and all(spec.handoff_peers == peers for spec in specs)
        for spec in specs:  # what is sent through worker N's peer reaches worker N
            with socket.socket(fileno=socket.dup(peers[spec.index])) as sending, \
                    socket.socket(fileno=socket.dup(spec.handoff)) as receiving:
                sending.send(b"to %d" % spec.index)
                receiving.settimeout(5)
                assert receiving.recv(100) == b"to %d" % spec.index
        assert len({fd for spec in specs for fd in spec.fds}) == 2 * 3 + 3 + 3
        assert WorkerSockets.from_json(specs[1].to_json()) == specs[1]


def test_a_handoff_header_round_trips_and_anything_else_is_refused() -> None:
    source = Endpoint("udp", "2001:db8::7", 5062)
    listeners = [Endpoint("udp", "::1", 5060)]
    packet = handoff.encode(1, 0, source, b"SIP/2.0 180 Ringing\r\n\r\n")
    assert handoff.decode(packet, 2, listeners) == (1, 0, source,
                                                    b"SIP/2.0 180 Ringing\r\n\r\n")
    for bad in (b"", b"garbage", b"KH1 1 0 127.0.0.1 5060",  # no end of header
                b"KH1 2 0 127.0.0.1 5060\nx",  # no worker 2
                b"KH1 1 1 127.0.0.1 5060\nx",  # no listener 1
                b"KH1 1 0 example.com 5060\nx", b"KH1 1 0 127.0.0.1 0\nx",
                b"KH1 1 0 127.0.0.1 70000\nx", b"KH1 -1 0 127.0.0.1 5060\nx",
                b"KH1 1 0 127.0.0.1 5060 9\nx", b"KH1 1 0 \xff 5060\nx",
                b"KH1 " + b"9" * 100 + b" 0 127.0.0.1 5060\nx"):
        assert handoff.decode(bad, 2, listeners) is None, bad
    # Received on a connection: the source's transport is its listener's.
    tcp = [*listeners, Endpoint("tcp", "::1", 5060)]
    assert handoff.decode(handoff.encode(0, 1, source, b"x"), 2, tcp)[2] == \
        Endpoint("tcp", source.host, source.port)  # type: ignore[index]


def test_a_send_handoff_header_round_trips_and_anything_else_is_refused() -> None:
    peer = Endpoint("ws", "2001:db8::7", 50123)
    packet = handoff.encode_send(1, peer, b"INVITE sip:b@x SIP/2.0\r\n\r\n")
    assert handoff.decode_send(packet, 2) == (1, peer, b"INVITE sip:b@x SIP/2.0\r\n\r\n")
    assert handoff.decode(packet, 2, [peer]) is None  # not the other kind
    for bad in (b"KS1 1 udp 127.0.0.1 5060\nx",  # not a connection's transport
                b"KS1 1 TCP 127.0.0.1 5060\nx", b"KS1 2 tcp 127.0.0.1 5060\nx",
                b"KS1 1 tcp example.com 5060\nx", b"KS1 1 tcp 127.0.0.1 0\nx",
                b"KS1 1 tcp 127.0.0.1 5060", b"KS1 1 tcp 127.0.0.1\nx",
                b"KH1 1 0 127.0.0.1 5060\nx"):
        assert handoff.decode_send(bad, 2) is None, bad


def test_the_kernel_steers_a_marked_datagram_to_its_worker_and_spreads_the_rest() -> None:
    """The steering program (kamrouter/transport/steering.py) on a real group of three: a
    reply whose top Via names worker N reaches member N from any source; no mark (or one
    past the window): member (source port >> 1) % 3; a mark of
    two digits or of a worker that does not exist: the kernel's hash, which keeps each
    source on one member."""
    with bound([Endpoint("udp", "127.0.0.1", 0)], 3) as specs:
        (listener,) = specs[0].udp
        members = {socket.socket(fileno=socket.dup(spec.udp[listener])): spec.index
                   for spec in specs}
        for member in members:
            member.settimeout(0.05)

        def where(payload: bytes, client: socket.socket) -> int:
            client.sendto(payload, ("127.0.0.1", listener.port))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                for member, index in members.items():
                    try:
                        if member.recv(2000) == payload:
                            return index
                    except TimeoutError:
                        pass
            raise AssertionError(f"{payload!r} arrived nowhere")

        def reply(mark: str, padding: int = 0) -> bytes:
            return (f"SIP/2.0 180 Ringing\r\nX-Pad: {'p' * padding}\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{listener.port};branch=z9hG4bK{mark}a1b2.1.0"
                    "\r\n\r\n").encode()

        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
        for client in clients:
            client.bind(("127.0.0.1", 0))
            for worker in range(3):
                assert where(reply(f"w{worker}-"), client) == worker
            by_port = (client.getsockname()[1] >> 1) % 3
            for unmarked in (b"OPTIONS sip:x SIP/2.0\r\n\r\n", reply("w1-", padding=300),
                             b"short", b""):
                assert where(unmarked, client) == by_port, unmarked
            hashed = {where(unsteered, client)
                      for unsteered in (reply("w12-"), reply("w7-"), reply("wx-"))}
            assert len(hashed) == 1
        for sock in [*members, *clients]:
            sock.close()


def test_unmarked_datagrams_over_ipv6_are_spread_by_source_port() -> None:
    """The IPv6 program reads the port after the fixed header."""
    with bound([Endpoint("udp", "::1", 0)], 2) as specs:
        (listener,) = specs[0].udp
        members = [socket.socket(fileno=socket.dup(spec.udp[listener])) for spec in specs]
        for member in members:
            member.settimeout(10)
        for _ in range(4):
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as client:
                client.bind(("::1", 0))
                client.sendto(b"OPTIONS sip:x SIP/2.0\r\n\r\n", ("::1", listener.port))
                assert members[(client.getsockname()[1] >> 1) % 2].recv(2000).startswith(b"OPTIONS")
        for member in members:
            member.close()
