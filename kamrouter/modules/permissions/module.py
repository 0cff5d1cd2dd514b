"""The permissions module: address groups loaded from config and file, the script API
and the relay policy's two questions (is the source trusted? may this request go where it
asks to go?)."""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from kamrouter.config import ConfigError
from kamrouter.pipeline.addressing import NextHop, next_hop
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.permissions.address import (
    AddressEntry, AddressTable, append_to_file, load_file, remove_from_file)
from kamrouter.modules.permissions.bus_link import PermissionsBus
from kamrouter.modules.permissions.config import PermissionsConfig
from kamrouter.modules.permissions.rpc import PermissionsRpc
from kamrouter.sip import SipParseError, SipUri

if TYPE_CHECKING:
    from kamrouter.net import Endpoint
    from kamrouter.script.message import ScriptMessage
    from kamrouter.sip import Response

log = logging.getLogger("kamrouter.permissions")

#: Record-Route parameter carrying a trusted caller's signed Contact (see contact_token).
TOKEN_PARAM = "tc"


class PermissionsApi:
    """``from kamrouter.script import permissions`` (Kamailio's function names)::

        if not permissions.allow_source_address(msg, 1): ...        # $si/$sp in group 1
        group = permissions.allow_source_address_group(msg)          # -1: in no group
        permissions.allow_address(2, "192.0.2.7", 5060)              # any ip/port
        permissions.allow_trusted(msg)           # source in one of trusted_groups
        permissions.allow_destination(msg)       # next hop is us or in destination_groups
        rr.record_route(msg, permissions.contact_token(msg))   # see contact_token
    """

    def __init__(self, module: PermissionsModule) -> None:
        self._module = module
        secret = module.config.record_route_secret
        # blake2s takes keys of up to 32 bytes: a configured secret of any length is hashed.
        self._secret = hashlib.blake2s(secret.encode()).digest() if secret else os.urandom(32)
        self._table = module.table
        self._trusted = tuple(module.config.trusted_groups)
        self._destinations = tuple(module.config.destination_groups)

    def allow_source_address(self, msg: ScriptMessage, group: int = 1) -> bool:
        source = msg.source
        return self._table.find(source.host, source.port, source.proto, (group,)) is not None

    def allow_source_address_group(self, msg: ScriptMessage) -> int:
        source = msg.source
        entry = self._table.find(source.host, source.port, source.proto)
        return -1 if entry is None else entry.group

    def allow_address(self, group: int, ip: str, port: int = 0, proto: str = "any") -> bool:
        return self._table.find(ip, port, proto, (group,)) is not None

    def allow_address_group(self, ip: str, port: int = 0, proto: str = "any") -> int:
        entry = self._table.find(ip, port, proto)
        return -1 if entry is None else entry.group

    def allow_trusted(self, msg: ScriptMessage) -> bool:
        """The source is in one of ``trusted_groups``. (Kamailio's allow_trusted reads a
        separate trusted table; here trusted sources are address groups.)"""
        source = msg.source
        return self._table.find(source.host, source.port, source.proto,
                                self._trusted) is not None

    def allow_destination(self, msg: ScriptMessage) -> bool:
        """Where the request asks to go ($du, else the first Route that is not ours, else
        the Request-URI) is this router (the script decides from there), an entry of
        ``destination_groups``, or the Contact of a trusted caller that our own
        Record-Route signed (an in-dialog request back to it, see :meth:`contact_token`).
        False is counted in ``permissions:relay_denied``."""
        module = self._module
        try:
            uri, ours = self._requested(msg)
            hop = next_hop(uri)
        except SipParseError as exc:
            if exc.status == 416:
                return True  # not a SIP URI: nothing the router could send to
            module.relay_denied.value += 1
            return False
        if (module.is_me(hop.host, hop.port)
                or self._table.find(hop.host, hop.port, hop.proto, self._destinations)
                or any(self._signed(msg, route, hop) for route in ours)):
            return True
        module.relay_denied.value += 1
        return False

    def contact_token(self, msg: ScriptMessage) -> str:
        """``;tc=<token>`` for ``rr.record_route(msg, params)`` when the source is trusted:
        a keyed hash of the Call-ID and the caller's Contact, so that the callee (trusted
        or not) may send in-dialog requests back to that Contact, and nowhere else. Empty
        for untrusted sources, whose Contact is theirs to choose."""
        if not self.allow_trusted(msg):
            return ""
        try:
            contacts = msg.sip.contacts  # type: ignore[union-attr]
            if not contacts or contacts == "*":
                return ""
            hop = next_hop(str(contacts[0].uri))
        except SipParseError:
            return ""
        return f";{TOKEN_PARAM}={self._token(msg.call_id, hop.host, hop.port)}"

    def _token(self, call_id: str, host: str, port: int) -> str:
        text = f"{call_id}\n{host.lower()}\n{port}".encode("utf-8", "surrogateescape")
        return hashlib.blake2s(text, key=self._secret, digest_size=10).hexdigest()

    def _signed(self, msg: ScriptMessage, route: SipUri, hop: NextHop) -> bool:
        token = route.params.get(TOKEN_PARAM)
        if not token:
            return False
        return hmac.compare_digest(token, self._token(msg.call_id, hop.host, hop.port))

    def _requested(self, msg: ScriptMessage) -> tuple[str, list[SipUri]]:
        """The URI the request asks to be sent to, and our own Route entries before it."""
        if msg.dst_uri:
            return msg.dst_uri, []
        is_me = self._module.is_me
        ours: list[SipUri] = []
        for route in msg.sip.routes:  # type: ignore[union-attr]
            uri = route.uri
            if not (isinstance(uri, SipUri) and is_me(uri.host_ip, uri.port)):
                return str(uri), ours
            ours.append(uri)
        return msg.ruri, ours


class PermissionsModule(Module):
    name = "permissions"
    Config = PermissionsConfig

    def __init__(self, router: RouterServices, config: PermissionsConfig) -> None:
        super().__init__(router, config)
        base_dir = Path(getattr(getattr(router, "settings", None), "base_dir", None) or ".")
        self.file: Path | None = None
        if config.address_file:
            path = Path(config.address_file)
            self.file = path if path.is_absolute() else base_dir / path
        self.table = AddressTable()
        try:
            self.table.replace(self.read_entries())
        except (OSError, ValueError) as exc:
            raise ConfigError([f"permissions.address_file: {exc}"]) from None
        proxy = getattr(router, "proxy", None)
        identity = getattr(proxy, "identity", None)
        self.is_me = identity.is_me if identity is not None else (lambda host, port: False)
        stats = router.stats
        self.relay_denied = stats.counter("permissions", "relay_denied")
        self.reply_denied = stats.counter("permissions", "reply_denied")
        for kind in ("address", "subnet", "domain"):
            stats.gauge("permissions", f"{kind}_entries",
                        lambda kind=kind: len(self.table.of_kind(kind)))  # type: ignore[misc]
        self._file_lock = trio.Lock()
        #: Told of each runtime change (the state bus takes it to the other workers).
        self.on_added: Callable[[AddressEntry], None] | None = None
        self.on_removed: Callable[[tuple[int, str, int, int]], None] | None = None
        if router.bus is not None:  # several workers: one address table
            PermissionsBus(router.bus, self)
        self._api = PermissionsApi(self)
        check_stray_replies = getattr(router, "check_stray_replies", None)
        if check_stray_replies is not None:
            check_stray_replies(self.allow_stray_reply)
        PermissionsRpc(self).register(router.rpc)

    def api(self) -> PermissionsApi:
        return self._api

    def allow_stray_reply(self, reply: Response, source: Endpoint) -> bool:
        """A reply without a transaction is forwarded to its next Via only when it comes
        from a trusted source or goes to an allowed destination: else a forged reply
        would carry a stranger's bytes to any host and port (a local service included).
        Refusals are counted in ``permissions:reply_denied``."""
        table, config = self.table, self.config
        if table.find(source.host, source.port, source.proto,
                      tuple(config.trusted_groups)) is not None:
            return True
        nxt = reply.vias[1]
        if table.find((nxt.received or nxt.host).strip("[]"), nxt.rport or nxt.port or 5060,
                      nxt.transport.lower(), tuple(config.destination_groups)) is not None:
            return True
        self.reply_denied.value += 1
        return False

    def config_entries(self) -> list[AddressEntry]:
        return [item.entry() for item in self.config.address]

    def read_entries(self) -> list[AddressEntry]:
        """Config entries plus the file's (blocking: call from a thread at run time)."""
        from_file = load_file(self.file) if self.file is not None else []
        return [*self.config_entries(), *from_file]

    # -- live changes (RPC) ------------------------------------------------------------------
    async def reload(self) -> None:
        async with self._file_lock:
            entries = await trio.to_thread.run_sync(self.read_entries)
        self.table.replace(entries)
        log.info("permissions: %d address entries loaded", len(entries))

    async def add(self, entry: AddressEntry) -> bool:
        """Add an entry (written to the address file when there is one); False: known."""
        if not self.table.add(entry):
            return False
        if self.on_added is not None:
            self.on_added(entry)
        if self.file is not None:
            async with self._file_lock:
                await trio.to_thread.run_sync(append_to_file, self.file, entry)
        return True

    async def remove(self, key: tuple[int, str, int, int]) -> list[AddressEntry]:
        gone = self.table.remove(key)
        if gone and self.on_removed is not None:
            self.on_removed(key)
        if gone and self.file is not None:
            async with self._file_lock:
                await trio.to_thread.run_sync(remove_from_file, self.file, key)
        return gone
