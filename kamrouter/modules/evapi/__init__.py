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

Stats ``evapi:clients`` (connected now), ``sent``, ``received``, ``dropped`` (events that
reached no client: queue full or nobody connected), ``timeouts``. RPC ``evapi.list``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import trio

from kamrouter.config import ConfigError
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.evapi.server import (
    MAX_TAG_LENGTH,
    ControllerGone,
    EvapiServer,
    NoController,
    current_client,
)
from kamrouter.sip import wire_bytes

__all__ = ["ControllerGone", "EvapiApi", "EvapiConfig", "EvapiModule", "NoController",
           "encode_event", "split_host_port"]

log = logging.getLogger("kamrouter.evapi")


def split_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8448"`` or ``"[::1]:8448"`` -> (host, port); ValueError names the problem."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port, got {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"port must be a number 0-65535, got {port_text!r}")
    return host, int(port_text)


@dataclass
class EvapiConfig:
    bind_addr: str = "127.0.0.1:8448"
    netstring_format: bool = True
    max_clients: int = 8
    #: Events queued per client before further ones are dropped (and counted).
    queue_size: int = 1024
    #: Seconds one write to a client may take before the client is closed as dead.
    send_timeout: float = 5.0
    #: Largest netstring accepted from a client, bytes.
    max_message_size: int = 32768

    def validate(self) -> list[str]:
        problems = []
        try:
            split_host_port(self.bind_addr)
        except ValueError as exc:
            problems.append(f"bind_addr: {exc}")
        for name in ("max_clients", "queue_size", "max_message_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1")
        if self.send_timeout <= 0:
            problems.append("send_timeout: must be positive")
        return problems


def encode_event(data: str | bytes | dict[str, Any] | list[Any]) -> bytes:
    """Event payload as bytes: str as UTF-8, dict/list as compact JSON."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return wire_bytes(data)  # message text may carry bytes that are not UTF-8
    return json.dumps(data, separators=(",", ":")).encode()


class EvapiApi:
    """What routing scripts call."""

    def __init__(self, server: EvapiServer) -> None:
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
        self._current("set_tag").tag = tag

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
        self.server = EvapiServer(
            max_clients=config.max_clients, queue_size=config.queue_size,
            send_timeout=config.send_timeout, netstrings=config.netstring_format,
            max_message_size=config.max_message_size, stats=router.stats, emit=router.emit)
        self._api = EvapiApi(self.server)
        router.rpc.register("evapi.list", self.rpc_list)

    def api(self) -> EvapiApi:
        return self._api

    async def start(self, nursery: trio.Nursery) -> None:
        host, port = split_host_port(self.config.bind_addr)
        try:
            await self.server.listen(nursery, host, port)
        except OSError as exc:
            raise ConfigError([f"evapi.bind_addr: cannot listen on {self.config.bind_addr}: "
                               f"{exc.strerror or exc}"]) from None
        assert self.server.address is not None  # listen() succeeded
        self.router.own_endpoints.add(*self.server.address)

    def rpc_list(self) -> list[dict[str, Any]]:
        """List connected evapi clients: conidx, srcaddr, srcport, tag, queued, sent, dropped."""
        return [client.describe() for client in self.server.clients()]
