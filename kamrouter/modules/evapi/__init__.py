"""evapi: a TCP event socket between the router and external controllers (Kamailio's evapi).

Controllers connect to ``bind_addr`` (default ``127.0.0.1:8448``) and exchange messages
framed as netstrings ``<len>:<data>,`` (or raw chunks with ``netstring_format = false``).

Script API (``from kamrouter.script import evapi``)::

    evapi.relay(data)                 # to every client
    evapi.multicast(data, tag)        # to every client tagged `tag`
    evapi.unicast(data, tag)          # to the first client tagged `tag`
    evapi.set_tag(tag) / evapi.close()  # inside evapi:connection-new (or any evapi:* hook)
    reply = await evapi.async_relay(msg, {"event": "route-me", ...}, timeout=2.0)

``async_relay`` parks the transaction (the core absorbs retransmissions and has sent 100
Trying) until a client answers with a JSON object carrying the same transaction id
(``"tindex"`` and ``"tlabel"``, or ``"id": "<tindex>:<tlabel>"``), and returns that object;
None on timeout or when no client is connected (at once, not after the timeout).

Events (``router.emit``): ``evapi:connection-new``, ``evapi:connection-closed`` and
``evapi:message-received`` with data ``srcaddr``, ``srcport``, ``conidx``, ``tag`` and for
messages ``msg`` (text) and ``json`` (the decoded object, or None). Messages that answer an
``async_relay`` are delivered to it, not to the event.

Bounds (see :mod:`.config`): ``max_clients`` and ``max_clients_per_ip`` connections,
``idle_timeout`` seconds without a byte from a client, an optional shared secret
(``secret_file``) that a client sends as its first message, and JSON depth/integer limits.

Stats ``evapi:clients`` (connected now), ``sent``, ``received``, ``dropped`` (events that
reached no client: queue full or nobody connected), ``timeouts``, and what was refused or
closed: ``refused_clients`` (over a client limit), ``refused_auth`` (no or wrong secret),
``refused_json_limit`` (messages dropped), ``closed_idle``, ``drops_internal_error`` (a
bug met on a connection: logged with the client's address, connection closed).
RPC ``evapi.list``.

With ``[core] workers`` above 1, worker 0 listens on ``bind_addr`` and holds the clients
(one port, one owner, as Kamailio's one evapi process); it runs the ``evapi:*`` events and
answers ``evapi.list``. Every other worker passes its relays and requests to worker 0 over
a Unix stream socket in the run directory (``evapi.sock``, :mod:`.link`), and worker 0
passes each answer back to the worker whose request waits for it (:mod:`.hub`,
:mod:`.remote`): an ``async_relay`` resumes its transaction in the worker that parked it.
Transaction ids are unique in the router (a worker's ``tlabel`` is its index modulo the
number of workers). A restarted worker 0 listens again; its clients reconnect, and the
other workers' requests that waited meanwhile end as when the last client leaves.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.evapi.config import EvapiConfig, split_host_port
from kamrouter.modules.evapi.hub import Hub
from kamrouter.modules.evapi.link import SOCKET_NAME
from kamrouter.modules.evapi.remote import RemoteEvapi
from kamrouter.modules.evapi.server import (
    MAX_TAG_LENGTH,
    ControllerGone,
    EvapiServer,
    NoController,
    current_client,
)
from kamrouter.secretfile import read_secret_lines
from kamrouter.sip import wire_bytes

__all__ = ["ControllerGone", "EvapiApi", "EvapiConfig", "EvapiModule", "NoController",
           "encode_event", "split_host_port"]

log = logging.getLogger("kamrouter.evapi")
#: Seconds a worker other than 0 waits at start for worker 0's list of clients.
START_WAIT = 2.0


def encode_event(data: str | bytes | dict[str, Any] | list[Any]) -> bytes:
    """Event payload as bytes: str as UTF-8, dict/list as compact JSON."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return wire_bytes(data)  # message text may carry bytes that are not UTF-8
    return json.dumps(data, separators=(",", ":")).encode()


class EvapiApi:
    """What routing scripts call."""

    def __init__(self, server: EvapiServer | RemoteEvapi) -> None:
        self._server = server

    def relay(self, data: str | bytes | dict[str, Any]) -> int:
        """Send to every client; returns how many clients the event was queued for."""
        return self._server.send(encode_event(data))

    def multicast(self, data: str | bytes | dict[str, Any], tag: str) -> int:
        return self._server.send(encode_event(data), tag)

    def unicast(self, data: str | bytes | dict[str, Any], tag: str) -> int:
        return self._server.send(encode_event(data), tag, first_only=True)

    def set_tag(self, tag: str) -> None:
        """Tag the client of the running evapi:* event hook."""
        if not isinstance(tag, str) or not 0 < len(tag) <= MAX_TAG_LENGTH:
            raise ValueError(f"evapi.set_tag: tag must be a string of 1-{MAX_TAG_LENGTH} chars")
        client = self._current("set_tag")
        assert isinstance(self._server, EvapiServer)  # hooks run where the clients are
        self._server.set_tag(client, tag)

    def close(self) -> None:
        """Close the client of the running evapi:* event hook (e.g. to refuse it)."""
        self._current("close").close()

    async def request(self, ident: str, data: bytes, timeout: float,
                      tag: str | None = None) -> dict[str, Any]:
        """Send ``data`` and wait for the message carrying ``ident`` (for modules): raises
        :class:`NoController` when no client can take it, :class:`ControllerGone` when the last
        one leaves meanwhile, ``trio.TooSlowError`` after ``timeout``."""
        return await self._server.request(ident, data, timeout, tag)

    async def async_relay(self, msg: Any, data: str | bytes | dict[str, Any], *,
                          timeout: float = 5.0, tag: str | None = None
                          ) -> dict[str, Any] | None:
        """Send ``data`` and wait for the controller's answer for this transaction.

        A dict gets ``tindex``, ``tlabel`` and ``id`` added unless present; text must embed
        them itself. With ``tag`` only the first client so tagged is asked. Returns the
        answer (a dict), or None on timeout / when no client is connected.
        """
        ident = f"{msg.tindex}:{msg.tlabel}"
        if isinstance(data, dict):
            data = {"tindex": msg.tindex, "tlabel": msg.tlabel, "id": ident, **data}
        try:
            return await self._server.request(ident, encode_event(data), timeout, tag)
        except (NoController, ControllerGone, trio.TooSlowError) as exc:
            log.info("evapi.async_relay %s: %s", ident, exc)
            return None

    @staticmethod
    def _current(caller: str) -> Any:
        client = current_client.get()
        if client is None:
            raise RuntimeError(f"evapi.{caller}: only inside an evapi:* event hook")
        return client


class EvapiModule(Module):
    name = "evapi"
    Config = EvapiConfig

    def __init__(self, router: RouterServices, config: EvapiConfig) -> None:
        super().__init__(router, config)
        index = router.worker_index
        link_path = os.path.join(router.settings.rpc.run_dir, SOCKET_NAME)
        self.server: EvapiServer | RemoteEvapi
        self.hub: Hub | None = None
        if not index:  # the only process, or worker 0: the clients are here
            self.server = EvapiServer(config, stats=router.stats, emit=router.emit)
            if index == 0:
                self.hub = Hub(self.server, link_path, router.stats)
        else:
            self.server = RemoteEvapi(link_path, config, router.stats, router.own_endpoints)
        self._api = EvapiApi(self.server)
        router.rpc.register("evapi.list", self.rpc_list)

    def api(self) -> EvapiApi:
        return self._api

    async def start(self, nursery: trio.Nursery) -> None:
        server = self.server
        if isinstance(server, RemoteEvapi):
            nursery.start_soon(server.run)
            # Calls routed right after start find worker 0's clients (unless it is slow).
            with trio.move_on_after(START_WAIT):
                await server.ready.wait()
            return
        if self.config.secret_file:
            server.secret = read_secret_lines(self.config.secret_file, "evapi.secret_file")[0]
        host, port = split_host_port(self.config.bind_addr)
        try:
            await server.listen(nursery, host, port)
        except OSError as exc:
            raise ConfigError([f"evapi.bind_addr: cannot listen on {self.config.bind_addr}: "
                               f"{exc.strerror or exc}"]) from None
        assert server.address is not None  # listen() succeeded
        self.router.own_endpoints.add(*server.address)
        if self.hub is not None:
            try:
                await self.hub.listen(nursery)
            except OSError as exc:
                raise ConfigError([f"evapi: cannot listen on {self.hub.path} for the other "
                                   f"workers: {exc.strerror or exc}"]) from None

    async def stop(self) -> None:
        if self.hub is not None:
            self.hub.close()

    def rpc_list(self) -> list[dict[str, Any]]:
        """List connected evapi clients: conidx, srcaddr, srcport, tag, queued, sent, dropped."""
        return [client.describe() for client in self.server.clients()]
