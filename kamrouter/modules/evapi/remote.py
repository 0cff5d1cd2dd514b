"""evapi in a worker other than 0: relays and requests go over the link to worker 0, which
holds the clients (:mod:`.hub`); the answer to a request comes back the same way.

The worker keeps worker 0's list of connected clients (their tags): a relay with nobody to
take it is dropped here and counted, and a request with no client answers at once
(:class:`NoController`), as in one process. When the link ends (worker 0 being
restarted), the list is empty until the link is back: the requests waiting end with
:class:`ControllerGone`, like when the last client leaves; the worker reconnects every
:data:`RECONNECT` seconds.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import trio

from kamrouter import boundedjson
from kamrouter.guard import InputGuard
from kamrouter.modules.evapi.config import EvapiConfig
from kamrouter.modules.evapi.link import Link, text
from kamrouter.modules.evapi.server import (
    Client,
    NoController,
    Waiter,
    fail_waiters,
)
from kamrouter.net import OwnEndpoints
from kamrouter.stats import StatsRegistry

log = logging.getLogger("kamrouter.evapi")

#: Seconds between attempts to reach worker 0.
RECONNECT = 0.2
#: Clients in worker 0's list at most (max_clients is at most 10000).
MAX_LISTED = 10000


class RemoteEvapi:
    """Stands in for :class:`EvapiServer` in a worker other than 0."""

    def __init__(self, path: str, config: EvapiConfig, stats: StatsRegistry,
                 own_endpoints: OwnEndpoints) -> None:
        self.path = path
        self.json_limits = config.json_limits()
        self.own_endpoints = own_endpoints
        #: The tags of worker 0's clients, one each.
        self.tags: list[str] = []
        self.link: Link | None = None
        #: Set once worker 0 sent its client list the first time.
        self.ready = trio.Event()
        self._address: tuple[str, int] | None = None
        self._waiters: dict[str, Waiter] = {}
        self.dropped = stats.counter("evapi", "dropped")
        self.timeouts = stats.counter("evapi", "timeouts")
        self.malformed = stats.counter("evapi", "link_dropped_malformed")
        self.guard = InputGuard("evapi", stats, log)
        stats.gauge("evapi", "clients", lambda: len(self.tags))

    def clients(self, tag: str | None = None) -> Iterator[Client]:
        """None here: the clients are worker 0's."""
        return iter(())

    def _count(self, tag: str | None) -> int:
        return sum(1 for each in self.tags if tag is None or each == tag)

    # -- what EvapiApi calls -----------------------------------------------------------------
    def send(self, data: bytes, tag: str | None = None, *, first_only: bool = False) -> int:
        """Pass ``data`` on to worker 0; how many of its clients should get it."""
        count = min(self._count(tag), 1) if first_only else self._count(tag)
        link = self.link
        if not count or link is None or not link.send(
                {"op": "send", "tag": tag, "first": first_only}, data):
            self.dropped.value += 1
            return 0
        return count

    async def request(self, ident: str, data: bytes, timeout: float, tag: str | None = None,
                      ) -> dict[str, Any]:
        """As :meth:`EvapiServer.request`, through worker 0."""
        if ident in self._waiters:
            raise ValueError(f"evapi: a request with id {ident!r} is already waiting")
        link = self.link
        if not self._count(tag) or link is None:
            self.dropped.value += 1
            raise NoController("no evapi client connected")
        waiter = self._waiters[ident] = Waiter()
        try:
            if not link.send({"op": "request", "id": ident, "tag": tag}, data):
                self.dropped.value += 1
                raise NoController("the evapi link to worker 0 is full")
            return await waiter.answer(ident, timeout, self.timeouts)
        finally:
            del self._waiters[ident]
            if waiter.reply is None and waiter.failure is None and self.link is link:
                link.send({"op": "forget", "id": ident})

    # -- the link ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect to worker 0 and keep connecting (until cancelled)."""
        while True:
            try:
                stream = await trio.open_unix_socket(self.path)
            except OSError:
                await trio.sleep(RECONNECT)
                continue
            link = self.link = Link(stream, self._on_frame, self.malformed)
            try:
                await link.run()
            except Exception as exc:  # noqa: BLE001 - the last-resort guard of this path
                self.guard.failed("worker 0's evapi link", exc)
            finally:
                self.link = None
                self._set_tags([])
                with trio.CancelScope(shield=True):
                    await stream.aclose()
            log.info("evapi: the link to worker 0 ended; reconnecting")
            await trio.sleep(RECONNECT)

    def _on_frame(self, header: dict[str, Any], body: bytes) -> None:
        op = header["op"]
        if op == "clients":
            tags = header["tags"]
            if not (isinstance(tags, list) and len(tags) <= MAX_LISTED
                    and all(isinstance(tag, str) for tag in tags)):
                raise ValueError("tags is not a list of strings")
            self._learn_address(header.get("address"))
            self._set_tags(tags)
            self.ready.set()
            return
        ident = text(header, "id")
        waiter = self._waiters.get(ident)
        if op == "reply":
            reply = boundedjson.loads(body, self.json_limits)
            if not isinstance(reply, dict):
                raise ValueError("the reply is not a JSON object")
            if waiter is None or waiter.reply is not None:
                log.debug("evapi: answer for %s came after its request ended", ident)
                return
            waiter.reply = reply
        elif op == "failed":
            if waiter is None:
                return
            waiter.failure = text(header, "why")
        else:
            raise ValueError(f"unknown op {op[:20]!r}")
        waiter.event.set()

    def _learn_address(self, address: Any) -> None:
        """evapi's address is this worker's too: nothing is ever sent there."""
        if isinstance(address, list) and len(address) == 2 and isinstance(address[0], str) \
                and type(address[1]) is int and 0 < address[1] < 65536 \
                and tuple(address) != self._address:
            self._address = (address[0], address[1])
            self.own_endpoints.add(*self._address)

    def _set_tags(self, tags: list[str]) -> None:
        self.tags = tags
        if not tags:
            fail_waiters(self._waiters)
