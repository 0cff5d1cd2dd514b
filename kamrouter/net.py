"""Transport-neutral addressing shared by the sans-IO layers and the trio transports."""
from __future__ import annotations

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
        raise ValueError(f"{text!r}: expected proto:host[:port] with proto udp or tcp")
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
