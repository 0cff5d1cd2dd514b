"""The sockets of worker processes: shared listeners and each worker's own reply socket.

With ``[core] workers = N`` the supervisor binds, before it starts any worker:

- per SIP listener and worker, one socket in a SO_REUSEPORT group on the listener's
  address. Linux picks the group member for a UDP datagram by a hash of its source and
  destination address and port (``udp_ehashfn`` in ``net/ipv4/udp.c``), and for a TCP
  connection by the same 4-tuple, so a peer's retransmissions, CANCELs and ACKs reach the
  worker that got its INVITE as long as it sends them from the same address and port;
- per UDP listener and worker, one more UDP socket on the same host with a port of the
  kernel's choice: the worker sends the requests it forwards from it and names it in their
  Via, so the replies to them come back to that worker, not to whichever worker the
  4-tuple hash of the next hop would pick. Record-Route names the shared listener.

The supervisor keeps every socket open, and a restarted worker gets the same ones back:
a group's size never changes (the hash would move every peer to another worker), and
datagrams that arrive meanwhile wait in the dead worker's socket for its successor. Each
worker learns the reply sockets of all workers, so it never sends to one of them.
"""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

from kamrouter.net import Endpoint, parse_socket


@dataclass(frozen=True)
class WorkerSockets:
    """What one worker process is handed: its sockets, by file descriptor."""

    index: int
    #: UDP listener (its resolved address) → (this worker's member of its reuseport group,
    #: this worker's reply socket).
    udp: dict[Endpoint, tuple[int, int]] = field(default_factory=dict)
    #: TCP/TLS listener → this worker's member of its reuseport group (bound, not listening).
    stream: dict[Endpoint, int] = field(default_factory=dict)
    #: The reply sockets of every worker (a worker sends nothing there).
    reply_endpoints: tuple[Endpoint, ...] = ()
    #: Other ports of the router a worker sends nothing to (the supervisor's HTTP RPC).
    control: tuple[Endpoint, ...] = ()

    @property
    def fds(self) -> list[int]:
        return [fd for pair in self.udp.values() for fd in pair] + list(self.stream.values())

    @property
    def own_replies(self) -> tuple[Endpoint, ...]:
        """This worker's reply sockets (``reply_endpoints`` lists them worker by worker)."""
        count = len(self.udp)
        return self.reply_endpoints[self.index * count:(self.index + 1) * count]

    @property
    def listens(self) -> list[Endpoint]:
        return [*self.udp, *self.stream]

    def to_json(self) -> str:
        return json.dumps({"index": self.index,
                           "udp": [[str(e), shared, reply] for e, (shared, reply)
                                   in self.udp.items()],
                           "stream": [[str(e), fd] for e, fd in self.stream.items()],
                           "reply": [str(e) for e in self.reply_endpoints],
                           "control": [str(e) for e in self.control]})

    @classmethod
    def from_json(cls, text: str) -> WorkerSockets:
        data = json.loads(text)
        return cls(int(data["index"]),
                   {parse_socket(e): (int(shared), int(reply))
                    for e, shared, reply in data["udp"]},
                   {parse_socket(e): int(fd) for e, fd in data["stream"]},
                   tuple(parse_socket(e) for e in data["reply"]),
                   tuple(parse_socket(e) for e in data.get("control", ())))


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reuseport_socket(endpoint: Endpoint) -> socket.socket:
    """A socket bound to ``endpoint`` with SO_REUSEPORT, UDP or stream (not listening)."""
    kind = socket.SOCK_DGRAM if endpoint.proto == "udp" else socket.SOCK_STREAM
    sock = socket.socket(_family(endpoint.host), kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((endpoint.host, endpoint.port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_worker_sockets(listens: list[Endpoint], workers: int
                        ) -> tuple[list[WorkerSockets], list[socket.socket]]:
    """Bind every worker's sockets (port 0 in a listener: the kernel's choice, the same for
    the whole group); the per-worker descriptions and the sockets to keep open."""
    opened: list[socket.socket] = []
    try:
        groups: dict[Endpoint, list[socket.socket]] = {}
        for listen in listens:
            first = reuseport_socket(listen)
            opened.append(first)
            bound = Endpoint(listen.proto, listen.host, first.getsockname()[1])
            members = [first]
            for _ in range(workers - 1):
                members.append(reuseport_socket(bound))
                opened.append(members[-1])
            groups[bound] = members
        replies: list[dict[Endpoint, socket.socket]] = []
        for _ in range(workers):
            mine = {}
            for bound in groups:
                if bound.proto == "udp":
                    sock = socket.socket(_family(bound.host), socket.SOCK_DGRAM)
                    opened.append(sock)
                    sock.bind((bound.host, 0))
                    mine[bound] = sock
            replies.append(mine)
    except OSError:
        for sock in opened:
            sock.close()
        raise
    reply_endpoints = tuple(Endpoint("udp", bound.host, sock.getsockname()[1])
                            for mine in replies for bound, sock in mine.items())
    specs = [WorkerSockets(
        index,
        {bound: (members[index].fileno(), replies[index][bound].fileno())
         for bound, members in groups.items() if bound.proto == "udp"},
        {bound: members[index].fileno() for bound, members in groups.items()
         if bound.proto != "udp"},
        reply_endpoints) for index in range(workers)]
    return specs, opened
