"""Transport-neutral addressing shared by the sans-IO layers and the trio transports."""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple

#: Transports kamrouter listens on, lower case as in ``listen = ["udp:127.0.0.1:5060"]``.
RELIABLE_TRANSPORTS = frozenset({"tcp", "tls", "ws", "wss"})


class Endpoint(NamedTuple):
    """Where a message came from or goes to: transport, IP address (no brackets), port."""

    proto: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.proto in RELIABLE_TRANSPORTS

    def __str__(self) -> str:
        return f"{self.proto}:{format_hostport(self.host, self.port)}"


def format_hostport(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (``[::1]:5060``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@lru_cache(maxsize=256)  # a script's socket= strings, parsed per branch otherwise
def parse_socket(text: str, default_port: int = 5060) -> Endpoint:
    """Parse ``proto:host[:port]`` (IPv6 in brackets), as used by ``listen`` and ``socket``."""
    proto, sep, rest = text.partition(":")
    if not sep or proto.lower() not in {"udp", "tcp", "tls", "ws", "wss"}:
        raise ValueError(f"{text!r}: expected proto:host[:port] with proto udp, tcp, tls, ws or wss")
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket:
            raise ValueError(f"{text!r}: unterminated IPv6 reference")
        port_text = after[1:] if after.startswith(":") else ""
        if after and not after.startswith(":"):
            raise ValueError(f"{text!r}: garbage after IPv6 reference")
    else:
        host, _, port_text = rest.partition(":")
    if not host:
        raise ValueError(f"{text!r}: missing host")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"{text!r}: port is not a number") from None
    if not 0 <= port < 65536:  # 0: any free port (tests, benchmarks)
        raise ValueError(f"{text!r}: port out of range")
    return Endpoint(proto.lower(), host, port)


class OwnEndpoints:
    """Every address this process listens on: SIP sockets, the control plane's HTTP port,
    evapi. Nothing the router sends may go to one of them (a forged Via or Request-URI
    naming the router would make it talk to itself, or write SIP into its control port).

    A wildcard bind (``0.0.0.0``, ``::``) owns its port on every local address: loopback,
    the unspecified address (which Linux delivers locally) and the host's own addresses
    known when it was added. The check costs one set lookup for a port that is not ours.
    """

    def __init__(self) -> None:
        self._ports: set[int] = set()
        self._exact: set[tuple[str, int]] = set()
        self._wildcard_ports: set[int] = set()
        self._local_hosts: set[str] = set()

    def add(self, host: str, port: int) -> None:
        host = _canonical_host(host)
        self._ports.add(port)
        if _is_ip(host) and ipaddress.ip_address(host).is_unspecified:
            self._wildcard_ports.add(port)
            self._local_hosts |= _host_addresses()
        else:
            self._exact.add((host, port))

    def __contains__(self, dest: Endpoint) -> bool:
        port = dest.port
        if port not in self._ports:  # the usual case: not one of our port numbers
            return False
        host = _canonical_host(dest.host)
        if (host, port) in self._exact:
            return True
        return port in self._wildcard_ports and (host in self._local_hosts or _is_local_ip(host))

    def __iter__(self) -> Iterator[tuple[str, int]]:
        yield from sorted(self._exact)
        for port in sorted(self._wildcard_ports):
            yield "*", port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)  # next hops recur; the cache is bounded (hosts are attacker-chosen)
def _canonical_host(host: str) -> str:
    """One spelling per address (``::1`` for ``0:0::1``, IPv4 for ``::ffff:a.b.c.d``)."""
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower()
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def _is_local_ip(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_unspecified


def _host_addresses() -> set[str]:
    """This host's addresses as its resolver knows them (best effort, no interface scan)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return set()
    return {_canonical_host(str(info[4][0])) for info in infos}
