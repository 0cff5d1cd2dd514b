"""The sockets of worker processes: shared listeners, and each worker's hand-off socket.

With ``[core] workers = N`` the supervisor binds, before it starts any worker:

- per SIP listener and worker, one socket in a SO_REUSEPORT group on the listener's
  address. Linux picks the group member for a TCP connection by a hash of its source and
  destination address and port; a UDP group gets a program (:mod:`.steering`) that gives
  a reply whose top Via branch names a worker to that worker's member and any other
  datagram to a member chosen by its source port, so a peer's retransmissions, CANCELs
  and ACKs reach the worker that got its INVITE as long as it sends them from the same
  address and port (without the program, on a kernel that refuses it, the kernel's
  4-tuple hash does the same, less evenly). A worker forwards requests from its member of
  the group: they leave from the listener's address and port and name it in their Via (a
  NAT's pinhole towards the listener holds);
- per worker, a Unix datagram socket pair (:mod:`.handoff`): the worker receives on one
  end, every worker sends to it through the other. What reaches a worker over UDP and
  belongs to another (a reply whose Via branch names the other, a CANCEL or ACK of an
  INVITE transaction the other holds) is passed on to it there.

The supervisor keeps every socket open, and a restarted worker gets the same ones back:
a group's size never changes (the hash and the program would move peers to another worker), and
datagrams that arrive meanwhile wait in the dead worker's sockets for its successor.
"""
from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass, field

from kamrouter.net import Endpoint, parse_socket
from kamrouter.transport.handoff import handoff_pair
from kamrouter.transport.steering import steer

log = logging.getLogger("kamrouter.transport")


@dataclass(frozen=True)
class WorkerSockets:
    """What one worker process is handed: its sockets, by file descriptor."""

    index: int
    #: UDP listener (its resolved address) → this worker's member of its reuseport group.
    udp: dict[Endpoint, int] = field(default_factory=dict)
    #: TCP/TLS listener → this worker's member of its reuseport group (bound, not listening).
    stream: dict[Endpoint, int] = field(default_factory=dict)
    #: This worker's hand-off socket (-1: none, a single process).
    handoff: int = -1
    #: The sockets to send to every worker's hand-off socket through, by worker index.
    handoff_peers: tuple[int, ...] = ()
    #: Other ports of the router a worker sends nothing to (the supervisor's HTTP RPC).
    control: tuple[Endpoint, ...] = ()

    @property
    def fds(self) -> list[int]:
        own = [self.handoff] if self.handoff >= 0 else []
        return [*self.udp.values(), *self.stream.values(), *own, *self.handoff_peers]

    @property
    def listens(self) -> list[Endpoint]:
        return [*self.udp, *self.stream]

    def to_json(self) -> str:
        return json.dumps({"index": self.index,
                           "udp": [[str(e), fd] for e, fd in self.udp.items()],
                           "stream": [[str(e), fd] for e, fd in self.stream.items()],
                           "handoff": self.handoff, "handoff_peers": self.handoff_peers,
                           "control": [str(e) for e in self.control]})

    @classmethod
    def from_json(cls, text: str) -> WorkerSockets:
        data = json.loads(text)
        return cls(int(data["index"]),
                   {parse_socket(e): int(fd) for e, fd in data["udp"]},
                   {parse_socket(e): int(fd) for e, fd in data["stream"]},
                   int(data["handoff"]), tuple(int(fd) for fd in data["handoff_peers"]),
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
    the whole group) and make its hand-off pair; the per-worker descriptions and the
    sockets to keep open."""
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
            if bound.proto == "udp":
                try:
                    window = steer(first, len(members))
                except OSError as exc:  # an old kernel: the workers hand them over
                    log.warning("datagrams to %s are not steered to their worker by the "
                                "kernel: %s", bound, exc)
                else:
                    log.debug("datagrams to %s steered by a mark in their first %d bytes, "
                              "else by their source port",
                              bound, window)
        pairs = [handoff_pair() for _ in range(workers)]
        opened.extend(sock for pair in pairs for sock in pair)
    except OSError:
        for sock in opened:
            sock.close()
        raise
    specs = [WorkerSockets(
        index,
        {bound: members[index].fileno() for bound, members in groups.items()
         if bound.proto == "udp"},
        {bound: members[index].fileno() for bound, members in groups.items()
         if bound.proto != "udp"},
        pairs[index][0].fileno(), tuple(sending.fileno() for _, sending in pairs))
        for index in range(workers)]
    return specs, opened
