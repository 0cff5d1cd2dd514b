"""Where a SIP URI points (RFC 3263 without SRV/NAPTR) and how this proxy names itself."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from kamrouter.dns import Query, ip_literal
from kamrouter.dns.rfc3263 import DEFAULT_PORTS
from kamrouter.net import Endpoint, format_hostport
from kamrouter.sip import SipParseError, SipUri, parse_uri

DEFAULT_PORT = 5060


@dataclass(frozen=True, slots=True)
class NextHop:
    """A next hop before name resolution: transport, host (no brackets), port."""

    proto: str
    host: str
    port: int
    #: What RFC 3263 locates when the URI names a host without a port (None otherwise:
    #: the host's A/AAAA and ``port`` are all there is to it).
    query: Query | None = None


@lru_cache(maxsize=4096)  # a pure function of the text; the same targets recur per call
def next_hop(uri_text: str) -> NextHop:
    """Transport, host and port a request for ``uri_text`` goes to (maddr wins over host).

    Raises SipParseError 416 for URIs that are not SIP (a proxy cannot route them).
    """
    uri = parse_uri(uri_text)
    if not isinstance(uri, SipUri):
        raise SipParseError(416, f"Unsupported URI Scheme {uri.scheme}")
    transport = uri.transport.lower() if uri.transport else None
    proto = transport or ("tls" if uri.scheme == "sips" else "udp")
    host = uri.maddr or uri.host_ip
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    query = None
    if uri.port is None and ip_literal(host) is None:
        query = Query(host.lower(), uri.scheme == "sips", transport)
    return NextHop(proto, host, uri.port or DEFAULT_PORTS.get(proto, DEFAULT_PORT), query)


def record_route_value(local: Endpoint, double: bool, params: str = "",
                       flow_token: str | None = None) -> str:
    """The Record-Route entry naming ``local`` (``r2=on`` marks a double Record-Route),
    with the script's URI ``params`` (``;name=value``) after ``lr``; a flow token in the
    user part names the connection of the client on that side (RFC 5626)."""
    transport = "" if local.proto == "udp" else f";transport={local.proto}"
    r2 = ";r2=on" if double else ""
    user = f"{flow_token}@" if flow_token else ""
    return f"<sip:{user}{format_hostport(local.host, local.port)}{transport};lr{r2}{params}>"


def split_alias(alias: str) -> tuple[str, int | None]:
    """``[core] alias`` entry -> (host, port); no port (None) means any port."""
    host, _, port = alias.rpartition(":") if alias.count(":") == 1 else (alias, "", "")
    return (host, int(port)) if port.isdigit() else (alias, None)


class Identity:
    """The addresses that mean "this proxy": listening sockets plus configured aliases."""

    def __init__(self, sockets: list[Endpoint], aliases: list[str]) -> None:
        self._names: set[tuple[str, int]] = set()
        self._any_port: set[str] = set()
        for sock in sockets:
            self._names.add((sock.host.lower(), sock.port))
        for alias in aliases:
            host, port = split_alias(alias)
            if port is not None:
                self._names.add((host.lower(), port))
            else:
                self._any_port.add(host.strip("[]").lower())

        self._uri_cache: dict[str, bool] = {}

    def add(self, sock: Endpoint) -> None:
        self._names.add((sock.host.lower(), sock.port))
        self._uri_cache.clear()

    def is_me(self, host: str, port: int | None) -> bool:
        host = host.strip("[]").lower()
        return (host, port or DEFAULT_PORT) in self._names or host in self._any_port

    def is_my_uri(self, uri_text: str) -> bool:
        known = self._uri_cache.get(uri_text)
        if known is not None:
            return known
        try:
            uri = parse_uri(uri_text)
        except SipParseError:
            return False
        mine = isinstance(uri, SipUri) and self.is_me(uri.host_ip, uri.port)
        if len(self._uri_cache) > 4096:
            self._uri_cache.clear()
        self._uri_cache[uri_text] = mine
        return mine
