"""permissions.* RPC methods: Kamailio's names and result shapes, plus live add/remove.

Kamailio's shapes: ``addressDump`` lists ``{"table", "group", "item": {"ip", "port",
"tag"}}`` (tag "NULL" when unset), ``subnetDump`` ``{"id", "group", "item": {"ip", "mask",
"port", "tag"}}``; ``addressReload`` answers "Reload OK". kamrouter adds ``proto`` to each
item, ``domainDump`` as a list (Kamailio's repeats keys in one object), and
``testAddress``, ``addressAdd``, ``addressRemove`` (Kamailio edits its database instead).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kamrouter.modules.permissions.address import AddressEntry, make_entry
from kamrouter.rpc.registry import MethodRegistry, RpcError

if TYPE_CHECKING:
    from kamrouter.modules.permissions.module import PermissionsModule


def _item(entry: AddressEntry, **extra: Any) -> dict[str, Any]:
    return {**extra, "port": entry.port, "proto": entry.proto}


class PermissionsRpc:
    def __init__(self, module: PermissionsModule) -> None:
        self.module = module

    def register(self, registry: MethodRegistry) -> None:
        for name in ("addressReload", "addressDump", "subnetDump", "domainDump",
                     "testAddress", "addressAdd", "addressRemove"):
            registry.register(f"permissions.{name}", getattr(self, name))

    async def addressReload(self) -> str:
        """Read the address entries again: the config's and the address_file's (changes
        made with addressAdd/addressRemove and no address_file are lost)."""
        try:
            await self.module.reload()
        except (OSError, ValueError) as exc:
            raise RpcError(500, f"Reload failed: {exc}") from None
        return "Reload OK"

    def addressDump(self) -> list[dict[str, Any]]:
        """Exact addresses: [{table, group, item: {ip, port, tag, proto}}]."""
        return [{"table": i, "group": e.group,
                 "item": {"ip": e.address, **_item(e), "tag": e.tag or "NULL"}}
                for i, e in enumerate(self.module.table.of_kind("address"))]

    def subnetDump(self) -> list[dict[str, Any]]:
        """Subnets: [{id, group, item: {ip, mask, port, tag, proto}}]."""
        return [{"id": i, "group": e.group,
                 "item": {"ip": e.address, "mask": e.mask, **_item(e), "tag": e.tag}}
                for i, e in enumerate(self.module.table.of_kind("subnet"))]

    def domainDump(self) -> list[dict[str, Any]]:
        """Domain names: [{table, group, item: {domain_name, port, tag, proto}}]."""
        return [{"table": i, "group": e.group,
                 "item": {"domain_name": e.address, **_item(e), "tag": e.tag or "NULL"}}
                for i, e in enumerate(self.module.table.of_kind("domain"))]

    def testAddress(self, group: int, ip: str, port: int = 0, proto: str = "any"
                    ) -> dict[str, Any]:
        """Would allow_address(group, ip, port) match? Group 0: any group (as
        allow_address_group). Answers {allowed, group (matching, -1 if none), ip, port,
        tag}."""
        groups = None if group == 0 else (group,)
        entry = self.module.table.find(ip, port, proto.lower(), groups)
        return {"allowed": entry is not None, "group": entry.group if entry else -1,
                "ip": ip, "port": port, "tag": entry.tag if entry else ""}

    async def addressAdd(self, group: int, ip: str, mask: int = 0, port: int = 0,
                         tag: str = "", proto: str = "any") -> str:
        """Add an entry (ip may be IP/prefix or a domain name); written to address_file
        when there is one, so it survives a restart."""
        entry = self._entry(group, ip, mask, port, tag, proto)
        try:
            added = await self.module.add(entry)
        except OSError as exc:
            raise RpcError(500, f"Added in memory, but not stored: {exc}") from None
        if not added:
            raise RpcError(409, "Address already in table")
        return f"Ok. Address added{self._where()}"

    async def addressRemove(self, group: int, ip: str, mask: int = 0, port: int = 0) -> str:
        """Remove the entries with this group, ip, mask and port (from address_file too)."""
        entry = self._entry(group, ip, mask, port, "", "any")
        try:
            gone = await self.module.remove(entry.key())
        except OSError as exc:
            raise RpcError(500, f"Removed in memory, but not from the file: {exc}") from None
        if not gone:
            raise RpcError(404, "Address not found")
        return f"Ok. {len(gone)} removed{self._where()}"

    def _where(self) -> str:
        file = self.module.file
        return f" (stored in {file})" if file else " (in memory only: no address_file)"

    @staticmethod
    def _entry(group: int, ip: str, mask: int, port: int, tag: str, proto: str
               ) -> AddressEntry:
        try:
            return make_entry(group, ip, mask, port, proto, tag)
        except ValueError as exc:
            raise RpcError(400, f"Invalid Parameters: {exc}") from None
