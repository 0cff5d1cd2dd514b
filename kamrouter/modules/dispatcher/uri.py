"""What the dispatcher needs from a target's SIP URI, parsed once when the list is loaded."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kamrouter.sip import SipParseError, SipUri, parse_uri

#: Kamailio's PROTOID numbers (``dispatcher.list full``): 0 = not given in the URI.
PROTO_IDS = {"udp": 1, "tcp": 2, "tls": 3, "sctp": 4, "ws": 5, "wss": 6}


@dataclass(frozen=True)
class TargetAddress:
    scheme: str
    user: str | None
    #: Host as written (IPv6 in brackets), and without brackets.
    host: str
    host_ip: str
    #: Port as written, None when absent.
    port: int | None
    #: ``transport`` parameter, lower case, or None.
    transport: str | None
    #: The host in canonical form when it is an IP address literal, else None.
    ip: str | None

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (5061 if self.scheme == "sips" else 5060)

    @property
    def effective_proto(self) -> str:
        """RFC 3263 defaults when the URI names no transport: UDP for sip, TLS for sips."""
        return self.transport or ("tls" if self.scheme == "sips" else "udp")


def canonical_ip(text: str) -> str | None:
    """``text`` as ipaddress prints it (so ``::01`` and ``::1`` compare equal), None when it
    is not an IP address."""
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def parse_sip_uri(text: str) -> SipUri:
    """A sip:/sips: URI; raises ValueError with the reason."""
    try:
        uri = parse_uri(text)
    except SipParseError as exc:
        raise ValueError(f"invalid SIP URI {text!r}: {exc.reason}") from None
    if not isinstance(uri, SipUri):
        raise ValueError(f"invalid SIP URI {text!r}: expected a sip: or sips: URI")
    return uri


def parse_target(text: str) -> TargetAddress:
    uri = parse_sip_uri(text)
    if not uri.host:
        raise ValueError(f"invalid SIP URI {text!r}: missing host")
    return TargetAddress(scheme=uri.scheme.lower(), user=uri.user or None, host=uri.host,
                         host_ip=uri.host_ip, port=uri.port, transport=uri.transport,
                         ip=canonical_ip(uri.host_ip))


def replace_hostport(ruri: str, target: TargetAddress) -> str:
    """The R-URI with host and port taken from ``target`` (``select_domain``)."""
    return str(parse_sip_uri(ruri).replace(host=target.host, port=target.port))
