"""``dispatcher.*`` RPC methods: Kamailio's names, positional params, result shapes and
fault messages (each fault message may carry a detail after a colon).

Differences from Kamailio: sets are listed in ascending order; every DEST carries
``LATENCY``, ``RUNTIME`` (``DLGLOAD`` plus ``SELECTED``, how often it was chosen) and a
``PROBE`` object (last probe time, status, reason, probes sent/failed); integer params may
also come as decimal strings; ``set_state ... all`` on a set that does not exist fails
("State Update Failed") where Kamailio 5.6 answered OK; there is no ``reload_delta``
(reloads are serialised and swap atomically, so none is needed).
"""
from __future__ import annotations

import logging

from collections.abc import Awaitable, Callable
from typing import Any

from kamrouter.modules.dispatcher.core import Dispatcher
from kamrouter.modules.dispatcher.flags import parse_state, state_letters
from kamrouter.modules.dispatcher.hashing import ds_hash, hash_slot
from kamrouter.modules.dispatcher.health import Origin
from kamrouter.modules.dispatcher.listfile import ListError, make_spec
from kamrouter.modules.dispatcher.model import Destination
from kamrouter.modules.dispatcher.uri import PROTO_IDS
from kamrouter.rpc.registry import MethodRegistry, RpcError

log = logging.getLogger("kamrouter.dispatcher")


def _int_param(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise RpcError(500, f"Invalid Parameters: {name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise RpcError(500, f"Invalid Parameters: {name} must be an integer, got {value!r}")


def _str_param(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise RpcError(500, f"Invalid Parameters: {name} must be a non-empty string")
    return value


def _or_null(text: str) -> str | None:
    return text or None


def destination_record(dispatcher: Dispatcher, dest: Destination, mode: str) -> dict[str, Any]:
    """One ``DEST`` object of ``dispatcher.list``."""
    health = dest.health
    record: dict[str, Any] = {"URI": dest.uri, "FLAGS": state_letters(health.flags),
                              "PRIORITY": dest.priority}
    if mode == "full":
        address = dest.address
        addresses = sorted(dispatcher.addresses_of(dest))
        record.update({
            "HOST": address.host_ip, "IPADDR": addresses[0] if addresses else None,
            "PORT": address.effective_port, "PROTOID": PROTO_IDS.get(address.transport or "", 0),
            "DNSTIME_SEC": 0, "DNSTIME_USEC": 0,
        })
    attrs = dest.attrs
    if mode == "full" or (mode != "short" and attrs.body):
        record["ATTRS"] = {
            "BODY": _or_null(attrs.body), "DUID": _or_null(attrs.duid),
            "MAXLOAD": attrs.maxload, "WEIGHT": attrs.weight, "RWEIGHT": attrs.rweight,
            "SOCKET": _or_null(attrs.socket), "SOCKNAME": _or_null(attrs.sockname),
            "OBPROXY": _or_null(attrs.obproxy),
        }
    record["LATENCY"] = health.latency.as_rpc()
    record["RUNTIME"] = {"DLGLOAD": health.load, "SELECTED": health.selected}
    record["PROBE"] = {
        "LAST": health.last_probe_at, "CODE": health.last_probe_code or None,
        "REASON": _or_null(health.last_probe_reason), "SENT": health.probes_sent,
        "FAILED": health.probes_failed,
    }
    return record


class DispatcherRpc:
    """The RPC methods; ``reload`` is the module's (it reads files and resolves names)."""

    def __init__(self, dispatcher: Dispatcher, reload: Callable[[], Awaitable[None]]) -> None:
        self._ds = dispatcher
        self._reload = reload

    def register(self, registry: MethodRegistry) -> None:
        for name in ("list", "reload", "set_state", "set_duid_state", "ping_active", "add",
                     "remove", "hash"):
            registry.register(f"dispatcher.{name}", getattr(self, f"rpc_{name}"))

    def rpc_list(self, mode: str = "") -> dict[str, Any]:
        """Print all the destination sets: dispatcher.list [short|full]."""
        if mode not in ("", "short", "full"):
            raise RpcError(500, "Invalid Parameters: mode must be short or full")
        sets = self._ds.list.sets
        if not sets:
            raise RpcError(500, "No Destination Sets")
        records = [
            {"SET": {"ID": setid, "TARGETS": [
                {"DEST": destination_record(self._ds, dest, mode)} for dest in dset.targets]}}
            for setid, dset in sets.items()
        ]
        return {"NRSETS": len(sets), "RECORDS": records}

    async def rpc_reload(self) -> str:
        """Reload the destination list (file and config); a bad list is rejected whole."""
        try:
            await self._reload()
        except ListError as exc:
            log.error("dispatcher.reload failed, the current list stays: %s",
                      "; ".join(exc.problems))
            raise RpcError(500, "Reload Failed: " + "; ".join(exc.problems)) from None
        return "Ok. Dispatcher successfully reloaded."

    def _set_state(self, state: Any, group: Any, match: Callable[[Destination], bool]) -> str:
        if not isinstance(state, str):
            raise RpcError(500, "Unknown State Value")
        try:
            bits = parse_state(state)
        except ValueError:
            raise RpcError(500, "Unknown State Value") from None
        dset = self._ds.list.sets.get(_int_param(group, "group"))
        targets = [d for d in dset.targets if match(d)] if dset is not None else []
        if not targets:
            raise RpcError(500, "State Update Failed")
        for dest in targets:
            self._ds.change_state(dest, bits, Origin.RPC)
        return "Ok. Dispatcher state updated."

    def rpc_set_state(self, state: Any = None, group: Any = None, address: Any = None) -> str:
        """Set the state of a destination: dispatcher.set_state STATE GROUP ADDRESS|all.

        STATE is a (active), i (inactive), t (trying) or d (disabled), optionally followed by
        p (probing). It is applied verbatim, without thresholds.
        """
        address = _str_param(address, "address")
        return self._set_state(state, group, lambda d: address == "all" or d.uri == address)

    def rpc_set_duid_state(self, state: Any = None, group: Any = None, duid: Any = None) -> str:
        """Set the state of the destination(s) with this duid: STATE GROUP DUID."""
        duid = _str_param(duid, "duid")
        return self._set_state(state, group, lambda d: duid == "all" or d.attrs.duid == duid)

    def rpc_ping_active(self, state: Any = None) -> dict[str, int]:
        """Show (no param) or set (0|1) whether probes are sent."""
        old = int(self._ds.ping_active)
        if state is None:
            return {"OldPingState": old}
        value = _int_param(state, "state")
        if value not in (0, 1):
            raise RpcError(500, "Invalid Parameters: state must be 0 or 1")
        self._ds.ping_active = bool(value)
        return {"NewPingState": value, "OldPingState": old}

    def rpc_add(self, group: Any = None, address: Any = None, flags: Any = 0,
                priority: Any = 0, attrs: Any = "") -> str:
        """Add a destination to the running list: GROUP ADDRESS [FLAGS PRIORITY ATTRS].

        In memory only: the next dispatcher.reload rebuilds the list from its sources.
        """
        setid = _int_param(group, "group")
        uri = _str_param(address, "address")
        flags = _int_param(flags, "flags")
        priority = _int_param(priority, "priority")
        if not isinstance(attrs, str):
            raise RpcError(500, "Invalid Parameters: attrs must be a string")
        try:
            spec = make_spec(setid, uri, flags, priority, attrs, origin="rpc")
        except ValueError as exc:
            raise RpcError(500, f"Adding dispatcher dst failed: {exc}") from None
        self._ds.add(spec)
        return "Ok. Dispatcher destination added."

    def rpc_remove(self, group: Any = None, address: Any = None) -> str:
        """Remove every destination of GROUP with this ADDRESS from the running list."""
        setid = _int_param(group, "group")
        uri = _str_param(address, "address")
        if not self._ds.remove(setid, uri):
            raise RpcError(500, "Removing dispatcher dst failed")
        return "Ok. Dispatcher destination removed."

    def rpc_hash(self, nslots: Any = None, val1: Any = None, val2: Any = None) -> dict[str, int]:
        """Kamailio's dispatcher hash of one or two values: NSLOTS VAL1 [VAL2]."""
        slots = _int_param(nslots, "nslots")
        values = [str(v) if isinstance(v, int) and not isinstance(v, bool) else v
                  for v in (val1, val2)]
        if not isinstance(values[0], str) or not isinstance(values[1], str | None):
            raise RpcError(500, "Invalid Parameters: values must be strings")
        hashid = ds_hash(values[0], values[1])
        return {"hashid": hashid, "slot": hash_slot(hashid, slots)}
