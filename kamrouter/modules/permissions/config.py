"""The ``[permissions]`` section: address groups and the relay policy's groups."""
from __future__ import annotations

from dataclasses import dataclass, field

from kamrouter.modules.permissions.address import AddressEntry, make_entry

#: The group of trusted sources in the embedded default (127.0.0.1 only).
TRUSTED_GROUP = 1
#: The group of destinations anyone may reach (empty in the embedded default).
DESTINATION_GROUP = 2


@dataclass
class AddressConfig:
    """One ``address`` entry: ``{ group = 2, ip = "192.0.2.0/24", port = 5060 }``."""

    group: int = TRUSTED_GROUP
    ip: str = ""
    mask: int = 0
    port: int = 0
    proto: str = "any"
    tag: str = ""

    def entry(self) -> AddressEntry:
        return make_entry(self.group, self.ip, self.mask, self.port, self.proto, self.tag)


@dataclass
class PermissionsConfig:
    #: Kamailio address file (``group address [mask] [port] [tag]`` per line), relative to
    #: the config file; runtime add/remove (RPC, kamcli address) are written back to it.
    address_file: str = ""
    #: Address entries of the config itself (kept besides the file's). Setting the key
    #: replaces this default: list 127.0.0.1 again to keep trusting it.
    address: list[AddressConfig] = field(
        default_factory=lambda: [AddressConfig(TRUSTED_GROUP, "127.0.0.1")])
    #: Sources in these groups are trusted: relayed wherever their requests ask to go.
    trusted_groups: list[int] = field(default_factory=lambda: [TRUSTED_GROUP])
    #: Destinations in these groups may be reached by anyone (the relay allow list).
    destination_groups: list[int] = field(default_factory=lambda: [DESTINATION_GROUP])
    #: Key of the Record-Route tokens that let callees answer trusted callers in-dialog
    #: (``;tc=``). Empty: a random key per start, so dialogs set up before a restart lose
    #: it; give routers that share dialogs (or restart during calls) the same secret.
    record_route_secret: str = ""

    def validate(self) -> list[str]:
        problems = []
        for i, item in enumerate(self.address):
            try:
                item.entry()
            except ValueError as exc:
                problems.append(f"address[{i}]: {exc}")
        for key in ("trusted_groups", "destination_groups"):
            for i, group in enumerate(getattr(self, key)):
                if group < 1:
                    problems.append(f"{key}[{i}]: groups are positive integers, got {group}")
        return problems
