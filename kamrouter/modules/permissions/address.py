"""Address groups (sans-IO): entries, matching, and Kamailio's address file format.

An entry is ``group, address[, mask][, port][, tag]`` as in Kamailio's ``address`` table and
``address_file``: an IP address with a mask of its full length is an exact address, a
shorter mask a subnet, anything that is not an IP a domain name (matched as text, never
looked up). Port 0 matches any port. kamrouter adds an optional transport (``proto``,
"any" by default) and accepts ``10.0.0.0/8`` for address plus mask.

File lines: ``1 127.0.0.1 32 0 tag1``, ``2 192.168.1.0 24``, ``3 [::1]``; ``#`` starts a
comment. A sixth token (kamrouter only) is the transport; then a tag of ``-`` means none.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PROTOS = ("any", "udp", "tcp", "tls", "ws", "wss", "sctp")


@lru_cache(maxsize=4096)  # the same sources and next hops recur for every request
def parse_ip(text: str) -> IpAddress | None:
    """The IP address in ``text`` (brackets allowed; IPv4-mapped IPv6 as IPv4), else None."""
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class AddressEntry:
    group: int
    #: Normalised IP text (network address for subnets) or lower-case domain name.
    address: str
    #: Prefix length; the address's full length for exact addresses, 0 for domains.
    mask: int
    port: int = 0
    proto: str = "any"
    tag: str = ""

    @property
    def kind(self) -> str:
        """"address", "subnet" or "domain" (the dump each entry appears in)."""
        ip = parse_ip(self.address)
        if ip is None:
            return "domain"
        return "address" if self.mask == ip.max_prefixlen else "subnet"

    def key(self) -> tuple[int, str, int, int]:
        """What add/remove identify an entry by: group, address, mask, port."""
        return (self.group, self.address, self.mask, self.port)

    def file_line(self) -> str:
        line = f"{self.group} {_bracketed(self.address)} {self.mask} {self.port}"
        if self.proto != "any":
            return f"{line} {self.tag or '-'} {self.proto}"
        return f"{line} {self.tag}" if self.tag else line


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def make_entry(group: int, address: str, mask: int = 0, port: int = 0, proto: str = "any",
               tag: str = "") -> AddressEntry:
    """Validate and normalise one entry; ValueError says what is wrong."""
    if not 1 <= group <= 0xFFFFFFFF:
        raise ValueError(f"group must be a positive integer, got {group}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0 (any) to 65535, got {port}")
    proto = proto.lower()
    if proto not in PROTOS:
        raise ValueError(f"proto must be one of {', '.join(PROTOS)}, got {proto!r}")
    if any(c.isspace() for c in tag):
        raise ValueError(f"tag must be one token without spaces, got {tag!r}")
    text, slash, prefix = address.strip().partition("/")
    if slash:
        if not prefix.isdigit() or mask not in (0, int(prefix)):
            raise ValueError(f"address {address!r}: expected IP/prefix-length")
        mask = int(prefix)
    ip = parse_ip(text)
    if ip is None:
        host = text.lower()
        if not host or slash or any(c.isspace() or c in "[]/" for c in host):
            raise ValueError(f"address {address!r}: expected an IP, IP/prefix or domain name")
        return AddressEntry(group, host, 0, port, proto, tag)
    if mask == 0:
        mask = ip.max_prefixlen  # Kamailio: mask 0 (or none) means the whole address
    if not 1 <= mask <= ip.max_prefixlen:
        raise ValueError(f"mask must be 1 to {ip.max_prefixlen} for {ip}, got {mask}")
    network = ipaddress.ip_network(f"{ip}/{mask}", strict=False)
    return AddressEntry(group, str(network.network_address), mask, port, proto, tag)


class AddressTable:
    """Entries indexed for matching: exact addresses by text, subnets longest prefix first."""

    def __init__(self, entries: list[AddressEntry] | None = None) -> None:
        self.replace(entries or [])

    def replace(self, entries: list[AddressEntry]) -> None:
        self.entries = list(dict.fromkeys(entries))  # duplicates once, in order
        self._exact: dict[str, list[AddressEntry]] = {}
        self._domains: dict[str, list[AddressEntry]] = {}
        subnets = []
        for entry in self.entries:
            kind = entry.kind
            if kind == "address":
                self._exact.setdefault(entry.address, []).append(entry)
            elif kind == "domain":
                self._domains.setdefault(entry.address, []).append(entry)
            else:
                subnets.append((ipaddress.ip_network(f"{entry.address}/{entry.mask}"), entry))
        subnets.sort(key=lambda pair: -pair[1].mask)  # stable: file order within a length
        self._subnets = subnets

    def of_kind(self, kind: str) -> list[AddressEntry]:
        return [e for e in self.entries if e.kind == kind]

    def add(self, entry: AddressEntry) -> bool:
        """False when an entry with the same group, address, mask and port exists."""
        if any(e.key() == entry.key() for e in self.entries):
            return False
        self.replace([*self.entries, entry])
        return True

    def remove(self, key: tuple[int, str, int, int]) -> list[AddressEntry]:
        gone = [e for e in self.entries if e.key() == key]
        if gone:
            self.replace([e for e in self.entries if e.key() != key])
        return gone

    def find(self, host: str, port: int = 0, proto: str = "any",
             groups: tuple[int, ...] | None = None) -> AddressEntry | None:
        """The first entry (of ``groups``, or any) matching ``host``/``port``/``proto``:
        exact addresses, then subnets (longest prefix first), then domain names."""
        candidates = self._exact.get(host)
        if candidates is None:
            ip = parse_ip(host)
            if ip is None:
                return _first(self._domains.get(host.lower(), ()), port, proto, groups)
            candidates = self._exact.get(str(ip))
        else:
            ip = None
        found = _first(candidates or (), port, proto, groups)
        if found is not None or not self._subnets:
            return found
        ip = ip or parse_ip(host)
        for network, entry in self._subnets:
            if ip in network and _matches(entry, port, proto, groups):
                return entry
        return None


def _matches(entry: AddressEntry, port: int, proto: str,
             groups: tuple[int, ...] | None) -> bool:
    return ((groups is None or entry.group in groups)
            and (entry.port == 0 or entry.port == port)
            and (entry.proto == "any" or entry.proto == proto))


def _first(entries, port: int, proto: str, groups: tuple[int, ...] | None
           ) -> AddressEntry | None:
    for entry in entries:
        if _matches(entry, port, proto, groups):
            return entry
    return None


# -- the address file ----------------------------------------------------------------------
def parse_line(line: str) -> AddressEntry | None:
    """One record of an address file (None for blank and comment lines)."""
    tokens = line.split("#", 1)[0].split()
    if not tokens:
        return None
    if len(tokens) > 6:
        raise ValueError("too many fields (group address [mask] [port] [tag] [proto])")
    numbers = []
    for name, text in zip(("group", "mask", "port"), [tokens[0], *tokens[2:4]]):
        if not text.isdigit():
            raise ValueError(f"{name} must be an integer, got {text!r}")
        numbers.append(int(text))
    group, mask, port = (numbers + [0, 0])[:3]
    if len(tokens) < 2:
        raise ValueError("missing address")
    tag = tokens[4] if len(tokens) > 4 else ""
    proto = tokens[5] if len(tokens) > 5 else "any"
    return make_entry(group, tokens[1], mask, port, proto, "" if tag == "-" else tag)


def load_file(path: Path) -> list[AddressEntry]:
    """Every record of ``path``; ValueError naming file and line for the first bad one."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                entry = parse_line(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
            if entry is not None:
                entries.append(entry)
    return entries


def append_to_file(path: Path, entry: AddressEntry) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    _write_atomically(path, text + entry.file_line() + "\n")


def remove_from_file(path: Path, key: tuple[int, str, int, int]) -> int:
    """Drop the records with ``key`` (comments and other lines stay); how many went."""
    if not path.exists():
        return 0
    kept, removed = [], 0
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            entry = parse_line(line)
        except ValueError:
            entry = None
        if entry is not None and entry.key() == key:
            removed += 1
        else:
            kept.append(line)
    if removed:
        _write_atomically(path, "".join(kept))
    return removed


def _write_atomically(path: Path, text: str) -> None:
    """A crash leaves the old file or the new one, never half of one."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
