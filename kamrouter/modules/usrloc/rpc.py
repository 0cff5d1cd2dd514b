"""ul.* RPC methods with Kamailio's names, positional params and result shapes.

``ul.dump`` answers ``{"Domains": [{"Domain": {"Domain": table, "Size": slots, "AoRs": [...],
"Stats": {"Records": n, "Max-Slots": m}}}]}``, each AoR ``{"Info": {"AoR", "HashID",
"Contacts": [{"Contact": {...}}]}}``; unset strings are ``"[not set]"`` as in Kamailio.
"""
from __future__ import annotations

import zlib
from typing import Any

from kamrouter.modules.usrloc.location import Q_UNSPECIFIED, Binding, Location
from kamrouter.rpc.registry import MethodRegistry, RpcError

NOT_SET = "[not set]"
ALL_METHODS = 0xFFFFFFFF


def hash_id(aor: str) -> int:
    return zlib.crc32(aor.encode("utf-8", "surrogatepass"))


def q_value(q: int) -> float:
    return -1 if q == Q_UNSPECIFIED else q / 1000


def contact_info(binding: Binding, now: float) -> dict[str, Any]:
    return {"Contact": {
        "Address": binding.contact, "Expires": binding.seconds_left(now),
        "Q": q_value(binding.q), "Call-ID": binding.call_id, "CSeq": binding.cseq,
        "User-Agent": binding.user_agent or NOT_SET, "Received": binding.received or NOT_SET,
        "Path": binding.path or NOT_SET, "State": "CS_NEW", "Flags": binding.flags,
        "CFlags": binding.cflags, "Socket": binding.socket or NOT_SET,
        "Methods": ALL_METHODS if binding.methods < 0 else binding.methods,
        "Ruid": binding.ruid, "Instance": binding.instance or NOT_SET,
        "Reg-Id": binding.reg_id, "Server-Id": 0, "Tcpconn-Id": -1, "Keepalive": 0,
        "Last-Keepalive": int(binding.last_modified), "KA-Roundtrip": 0,
        "Last-Modified": int(binding.last_modified)}}


def _unset(value: str) -> str:
    """Kamailio's ul.add takes "." or "0" for an unset string."""
    return "" if value in (".", "0") else value


class UsrlocRpc:
    def __init__(self, tables: dict[str, Location], slots: int, use_domain: bool) -> None:
        self.tables = tables
        self.slots = slots
        self.use_domain = use_domain

    def _aor(self, aor: str) -> str:
        """As Kamailio: without use_domain, ``user@domain`` means ``user``."""
        return aor if self.use_domain else aor.partition("@")[0]

    def register(self, registry: MethodRegistry) -> None:
        for name in ("dump", "lookup", "add", "rm", "rm_contact", "flush"):
            registry.register(f"ul.{name}", getattr(self, name))

    def _table(self, name: str) -> Location:
        table = self.tables.get(name)
        if table is None:
            raise RpcError(500, f"Table {name!r} not found")
        return table

    def _aor_info(self, table: Location, aor: str, bindings: list[Binding]) -> dict[str, Any]:
        now = table.clock()
        return {"Info": {"AoR": aor, "HashID": hash_id(aor),
                         "Contacts": [contact_info(b, now) for b in bindings]}}

    def dump(self, brief: str = "") -> dict[str, Any]:
        """Dump every location table: its AoRs and their contacts (brief: addresses only)."""
        domains = []
        for name, table in self.tables.items():
            aors = []
            for aor, bindings in table.aors():
                if brief == "brief":
                    aors.append({"Info": {"AoR": aor, "Contacts": [
                        {"Contact": {"Address": b.contact}} for b in bindings]}})
                else:
                    aors.append(self._aor_info(table, aor, bindings))
            domains.append({"Domain": {"Domain": name, "Size": self.slots, "AoRs": aors,
                                       "Stats": {"Records": len(aors),
                                                 "Max-Slots": 1 if aors else 0}}})
        return {"Domains": domains}

    def lookup(self, table: str, aor: str) -> dict[str, Any]:
        """Show the contacts of AOR in TABLE."""
        location = self._table(table)
        aor = self._aor(aor)
        bindings = location.bindings(aor)
        if not bindings:
            raise RpcError(404, "AOR not found")
        now = location.clock()
        return {"AoR": aor, "Contacts": [contact_info(b, now) for b in bindings]}

    def add(self, table: str, aor: str, contact: str, expires: int, q: float, path: str = ".",
            flags: int = 0, cflags: int = 0, methods: int = -1, received: str = ".",
            socket: str = ".") -> None:
        """Add (or replace) a contact of AOR: table aor contact expires q path flags cflags
        methods [received [socket]] ("." or "0" for unset strings; q from 0 to 1, -1 unset)."""
        location = self._table(table)
        aor = self._aor(aor)
        if expires <= 0:
            raise RpcError(400, "Invalid expires value (seconds, must be > 0)")
        if not (q == -1 or 0 <= q <= 1):
            raise RpcError(400, "Invalid q value (0..1, or -1 for unset)")
        if not contact.startswith(("sip:", "sips:", "tel:")):
            raise RpcError(400, "Invalid contact URI")
        old = next((b for b in location.records.get(aor, ()) if b.contact == contact), None)
        binding = Binding(contact, location.clock() + expires,
                          Q_UNSPECIFIED if q == -1 else round(q * 1000),
                          call_id="dfjrewr12386fd-" + hash_id(aor + contact).__format__("x"),
                          cseq=1, path=_unset(path), received=_unset(received),
                          socket=_unset(socket), user_agent="SIP Router MI Server",
                          flags=flags, cflags=cflags,
                          methods=-1 if methods in (-1, ALL_METHODS) else methods,
                          ruid=old.ruid if old is not None else "")
        location.put(aor, binding, replacing=old)

    def rm(self, table: str, aor: str, contact: str = "") -> None:
        """Delete AOR and all its contacts from TABLE (only CONTACT when given)."""
        if contact:
            self.rm_contact(table, aor, contact)
        elif not self._table(table).delete_aor(self._aor(aor)):
            raise RpcError(404, "AOR not found")

    def rm_contact(self, table: str, aor: str, contact: str) -> None:
        """Delete one CONTACT of AOR from TABLE."""
        location = self._table(table)
        aor = self._aor(aor)
        if not location.records.get(aor):
            raise RpcError(404, "AOR not found")
        binding = next((b for b in location.records[aor] if b.contact == contact), None)
        if binding is None:
            raise RpcError(404, "Contact not found")
        location.delete(aor, binding)

    def flush(self) -> None:
        """Delete every binding of every table."""
        for table in self.tables.values():
            table.flush()
