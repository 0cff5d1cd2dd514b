"""Which worker process a datagram belongs to (``[core] workers`` above 1), sans-IO.

Every worker forwards from the shared listeners, so the kernel (by source port, or its hash
for TCP) may give a datagram to any of them. What a worker sends carries its index where
the answer will bring it back:

- the Via branch of every request it forwards or originates (tm's branch ids start with
  ``z9hG4bKw<index>-``, :func:`branch_mark`): a reply names the worker with the branch
  (the kernel already gives most replies to that worker,
  :mod:`kamrouter.transport.steering`; here are those whose mark it did not see);
- our Record-Route (and Path) entries, when a side of the request is a TCP/TLS/WebSocket
  connection (``;kw=<index>``, :func:`route_mark`): the dialog's later requests (and the
  requests a registrar sends through our Path) go to that worker, which holds the
  connection or hands what goes out on it to the worker that does
  (:mod:`kamrouter.transport.holders`), and which alone verifies the flow token of the
  entry (:mod:`.flow`, a key per process). An all-UDP dialog has no mark: any worker
  forwards its in-dialog requests.

A CANCEL, or an ACK that does not come with a Route of ours (the ACK of a failure, not of
a 2xx), whose INVITE transaction is not here carries nothing of ours: it goes round the
workers, each passing it to the next, and the one before the worker it arrived at handles
it whatever it holds (with two workers: one hand-off, and the other worker decides).
Over a connection only replies are handed off (by their branch: the replies of a request
another worker sent out on this one's connection); a request that comes on a connection
is routed by the worker holding it, which is the one its replies must go back through.
What another worker passed on is never passed on again except along that round, and a
mark naming a worker that does not exist is dropped: both counted in
``core:handoff_dropped``.
"""
from __future__ import annotations

from typing import Protocol

from kamrouter.net import Endpoint
from kamrouter.pipeline.addressing import Identity
from kamrouter.sip import MAGIC_COOKIE, Request, Response, SipUri
from kamrouter.stats import Counter
from kamrouter.tm import TransactionLayer

#: The Record-Route / Path URI parameter that names a worker.
ROUTE_PARAM = "kw"
_ROUTE_BYTES = f";{ROUTE_PARAM}=".encode()
_BRANCH_START = f"{MAGIC_COOKIE}w"


def branch_mark(index: int) -> str:
    """What worker ``index``'s branch ids start with after the magic cookie."""
    return f"w{index}-"


def route_mark(index: int) -> str:
    """The URI parameter of worker ``index``'s Record-Route and Path entries."""
    return f";{ROUTE_PARAM}={index}"


def _index(text: str | None) -> int | None:
    """A worker index written by :func:`branch_mark` or :func:`route_mark`, else None."""
    if not text or len(text) > 4 or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def branch_worker(branch: str | None) -> int | None:
    """The worker a branch id names, or None (not one of a worker's)."""
    if not branch or not branch.startswith(_BRANCH_START):
        return None
    digits, dash, _ = branch[len(_BRANCH_START):].partition("-")
    return _index(digits) if dash else None


class HandoffPort(Protocol):
    """The transport's end of the hand-off (:class:`kamrouter.transport.handoff.Handoff`)."""

    index: int
    count: int
    dropped: Counter

    def send(self, target: int, origin: int, data: bytes, source: Endpoint,
             local: Endpoint) -> None: ...


class Handoffs:
    """Passes the datagrams that belong to another worker on to it."""

    def __init__(self, port: HandoffPort, tm: TransactionLayer, identity: Identity) -> None:
        self.port = port
        self.index = port.index
        self.tm = tm
        self.identity = identity

    def divert(self, msg: Request | Response, data: bytes, source: Endpoint,
               local: Endpoint, origin: int | None) -> bool:
        """True when ``msg`` (``data`` as received from ``source`` on ``local``; ``origin``:
        the worker it first reached, when another passed it on) is not this worker's: then
        it has been passed on, or dropped."""
        if source.proto != "udp" and not isinstance(msg, Response):
            return False
        target, round_trip = self._owner(msg, data, origin)
        if target is None or target == self.index:
            return False
        if target >= self.port.count or (origin is not None and not round_trip):
            self.port.dropped.value += 1
            return True
        self.port.send(target, self.index if origin is None else origin, data, source, local)
        return True

    def _owner(self, msg: Request | Response, data: bytes, origin: int | None
               ) -> tuple[int | None, bool]:
        """The worker ``msg`` is for (None: this one), and whether that is the next of a
        round rather than a mark's."""
        if isinstance(msg, Response):
            return branch_worker(msg.via.branch), False
        if _ROUTE_BYTES in data:
            marked = self._route_worker(msg)
            if marked is not None:
                return marked, False
        method = msg.method
        if method == "CANCEL":
            orphan = self.tm.find_invite(msg) is None
        elif method == "ACK":
            orphan = self.tm.find(msg) is None and not self._routed_here(msg)
        else:
            return None, False
        if not orphan:
            return None, False
        following = (self.index + 1) % self.port.count
        last = following == (self.index if origin is None else origin)
        return (None if last else following), True

    def _our_route(self, msg: Request) -> SipUri | None:
        routes = msg.routes
        uri = routes[0].uri if routes else None
        return uri if isinstance(uri, SipUri) and self.identity.is_me(uri.host_ip, uri.port) \
            else None

    def _routed_here(self, msg: Request) -> bool:
        return self._our_route(msg) is not None

    def _route_worker(self, msg: Request) -> int | None:
        uri = self._our_route(msg)
        return _index(uri.params.get(ROUTE_PARAM)) if uri is not None else None
