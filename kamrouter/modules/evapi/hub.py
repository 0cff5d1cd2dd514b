"""Worker 0's end of the evapi links: the other workers' relays and requests reach its
clients, and the answers to their requests go back to them.

Ops from a worker: ``send`` (``tag``, ``first``: a relay, multicast or unicast of the body),
``request`` (``id``, ``tag``: as :meth:`EvapiServer.request` sends it; the id is then
remembered for that worker) and ``forget`` (``id``: it stopped waiting). Ops to a worker:
``clients`` (the tags of the connected clients, one each, and evapi's ``address``: sent on
connect and on every change), ``reply`` (``id``, the client's message as body) and
``failed`` (``id``, ``why``: the request reached no client).

A client's message that carries a remembered id goes to that worker instead of the
``evapi:message-received`` event. At most :data:`MAX_PENDING` ids are remembered; a worker
that is gone (its link ended) takes its ids with it.
"""
from __future__ import annotations

import logging
import os
from contextlib import suppress
from typing import Any

import trio

from kamrouter.guard import InputGuard
from kamrouter.modules.evapi.link import Link, optional_text, text
from kamrouter.modules.evapi.server import EvapiServer
from kamrouter.stats import StatsRegistry

log = logging.getLogger("kamrouter.evapi")

#: Requests of other workers waiting for an answer at once (beyond: refused as "full").
MAX_PENDING = 65536


class Hub:
    def __init__(self, server: EvapiServer, path: str, stats: StatsRegistry) -> None:
        self.server = server
        self.path = path
        self.links: set[Link] = set()
        #: id of a request of another worker → the link to that worker
        self.pending: dict[str, Link] = {}
        self.malformed = stats.counter("evapi", "link_dropped_malformed")
        self.guard = InputGuard("evapi", stats, log)
        server.on_clients_changed = self.push_clients
        server.answer_elsewhere = self._answer

    async def listen(self, nursery: trio.Nursery) -> None:
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        with suppress(FileNotFoundError):  # left by a predecessor that was killed
            os.unlink(self.path)
        await sock.bind(self.path)
        sock.listen(64)
        nursery.start_soon(trio.serve_listeners, self._serve, [trio.SocketListener(sock)])

    def close(self) -> None:
        """Remove the socket's file (the router stops)."""
        with suppress(FileNotFoundError):
            os.unlink(self.path)

    def clients_header(self) -> dict[str, Any]:
        return {"op": "clients", "tags": [client.tag for client in self.server.clients()],
                "address": list(self.server.address or ())}

    def push_clients(self) -> None:
        header = self.clients_header()
        for link in self.links:
            link.send(header)

    async def _serve(self, stream: trio.SocketStream) -> None:
        link = Link(stream, lambda header, body: self._on_frame(link, header, body),
                    self.malformed)
        self.links.add(link)
        try:
            link.send(self.clients_header())
            await link.run()
        except Exception as exc:  # noqa: BLE001 - the last-resort guard of this path
            self.guard.failed("a worker's evapi link", exc)
        finally:
            self.links.discard(link)
            for ident in [ident for ident, owner in self.pending.items() if owner is link]:
                del self.pending[ident]
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def _on_frame(self, link: Link, header: dict[str, Any], body: bytes) -> None:
        op = header["op"]
        tag = optional_text(header, "tag") if op in ("send", "request") else None
        if op == "send":
            self.server.send(body, tag, first_only=header.get("first") is True)
        elif op == "request":
            ident = text(header, "id")
            why = self._refusal(ident, body, tag)
            if why is None:
                self.pending[ident] = link
            else:
                link.send({"op": "failed", "id": ident, "why": why})
        elif op == "forget":
            ident = text(header, "id")
            if self.pending.get(ident) is link:
                del self.pending[ident]
        else:
            raise ValueError(f"unknown op {op[:20]!r}")

    def _refusal(self, ident: str, body: bytes, tag: str | None) -> str | None:
        """Send a request of another worker; why it could not be, or None."""
        if ident in self.pending or self.server.waiting(ident):
            return f"a request with id {ident[:40]!r} is already waiting"
        if len(self.pending) >= MAX_PENDING:
            return f"{MAX_PENDING} requests of other workers are waiting already"
        if not self.server.send(body, tag, first_only=tag is not None):
            return self.server.why_unsent(tag)
        return None

    def _answer(self, ident: str, message: bytes) -> bool:
        """Pass a client's message on to the worker waiting for ``ident``, if any."""
        link = self.pending.pop(ident, None)
        if link is None:
            return False
        link.send({"op": "reply", "id": ident}, message)
        return True
