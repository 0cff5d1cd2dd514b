"""The address table shared between worker processes through the state bus
(:mod:`kamrouter.modules.bus`, channel ``permissions``): ``addressAdd``/``addressRemove``
run in worker 0 (which writes the address file, when there is one), and the change reaches
every other worker's table in memory, as ``["add", [group, address, mask, port, proto,
tag]]`` or ``["remove", [group, address, mask, port]]``. ``addressReload`` needs no message:
the supervisor runs it in every worker, and each reads the file.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.permissions.address import AddressEntry, make_entry

if TYPE_CHECKING:
    from kamrouter.modules.permissions.module import PermissionsModule

CHANNEL = "permissions"


def _entry(fields: Any) -> AddressEntry:
    group, address, mask, port, proto, tag = fields
    if not (type(group) is int and isinstance(address, str) and type(mask) is int
            and type(port) is int and isinstance(proto, str) and isinstance(tag, str)):
        raise ValueError(f"not an address entry: {fields!r}"[:200])
    return make_entry(group, address, mask, port, proto, tag)


def _fields(entry: AddressEntry) -> list[Any]:
    return [entry.group, entry.address, entry.mask, entry.port, entry.proto, entry.tag]


class PermissionsBus:
    def __init__(self, bus: StateBus, module: PermissionsModule) -> None:
        self.module = module
        module.on_added = lambda entry: bus.publish(CHANNEL, ["add", _fields(entry)])
        module.on_removed = lambda key: bus.publish(CHANNEL, ["remove", list(key)])
        bus.register(CHANNEL, self)

    def apply(self, payload: Any) -> None:
        action, fields = payload
        if action == "add":
            self.module.table.add(_entry(fields))
        elif action == "remove":
            group, address, mask, port = fields
            self.module.table.remove(_entry([group, address, mask, port, "any", ""]).key())
        else:
            raise ValueError(f"unknown permissions change {action!r}"[:100])

    def dump(self) -> list[list[Any]]:
        return [_fields(entry) for entry in self.module.table.entries]

    def load(self, data: Any) -> None:
        self.module.table.replace([_entry(fields) for fields in data])
