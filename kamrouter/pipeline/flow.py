"""RFC 5626 flow tokens: the Record-Route (or Path) entry this proxy puts on the side of a
client that is reachable only over its own connection (a WebSocket browser, whose Contact
host is ``.invalid``; a TCP/TLS client whose Contact is ``.invalid`` or carries ``ob``)
names that connection in its user part, so a request for the client
that comes back through that entry is sent over the connection, whatever its Request-URI
says (Kamailio's ``outbound`` module does the same).

A token is the connection's transport, address and port with an HMAC over them (a
per-process key: tokens die with the process, as its connections do), base32 without
padding so it is a valid SIP URI user part. Tokens that do not verify are ignored.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from kamrouter.net import Endpoint, format_hostport
from kamrouter.sip import Request, SipParseError, SipUri, parse_uri

#: Transports whose clients cannot be reached by opening a connection to their Contact.
FLOW_TRANSPORTS = frozenset({"ws", "wss"})
#: Connection transports whose clients may say so themselves (see :func:`connection_only`).
_STREAMS = frozenset({"tcp", "tls"})
_MAC_BYTES = 10


def flow_uri(flow: Endpoint) -> str:
    """The $du that sends a request over ``flow``'s connection."""
    return f"sip:{format_hostport(flow.host, flow.port)};transport={flow.proto}"


def connection_only(uri_text: str) -> bool:
    """A client's URI (Contact, Request-URI) names no address to connect to: its host is
    ``.invalid`` (RFC 7118 §5) or it carries ``ob`` (RFC 5626 §5.4)."""
    if ".invalid" not in uri_text and ";ob" not in uri_text:
        return False  # the common case, without parsing
    try:
        uri = parse_uri(uri_text)
    except SipParseError:
        return False
    return isinstance(uri, SipUri) and (uri.host.lower().endswith(".invalid")
                                        or "ob" in uri.params)


def reached_over_connection(peer: Endpoint, uri_text: str) -> bool:
    """``peer`` (which sent ``uri_text`` as its Contact, or is where a request for that URI
    goes) can be reached only over its own connection."""
    return peer.proto in FLOW_TRANSPORTS or (peer.proto in _STREAMS
                                             and connection_only(uri_text))


def contact_of(req: Request) -> str:
    """The first Contact URI of ``req`` as text ("" when none or malformed)."""
    try:
        contacts = req.contacts
    except SipParseError:
        return ""
    return str(contacts[0].uri) if contacts and contacts != "*" else ""


def sender_needs_flow(source: Endpoint, req: Request) -> bool:
    """``req``'s sender (at ``source``) can be reached only over the connection it came on:
    a WebSocket client, or a TCP/TLS one whose Contact names no address to connect to."""
    if source.proto in FLOW_TRANSPORTS:
        return True
    if source.proto not in _STREAMS:
        return False
    # Look at the raw Contact before parsing it: most name a plain address.
    raw = req.get("Contact") or ""
    return (".invalid" in raw or ";ob" in raw) and connection_only(contact_of(req))


class FlowTokens:
    """Makes and checks the flow tokens of one router process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def for_source(self, source: Endpoint | None, req: Request) -> str | None:
        """The token naming the connection ``req`` came on, when its sender is reachable
        only over it (None otherwise)."""
        return self.encode(source) if source is not None and sender_needs_flow(source, req) \
            else None

    def for_destination(self, dest: Endpoint, req: Request) -> str | None:
        """The token naming ``dest``'s connection, when ``req`` goes to a client reachable
        only over it (its Request-URI, a registered Contact, says so)."""
        if dest.proto == "udp" or not reached_over_connection(dest, req.ruri):
            return None
        return self.encode(dest)

    def encode(self, flow: Endpoint) -> str:
        plain = f"{flow.proto}|{flow.host}|{flow.port}".encode()
        mac = hmac.new(self._key, plain, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.b32encode(mac + plain).decode().rstrip("=").lower()

    def decode(self, token: str) -> Endpoint | None:
        """The flow a token names, or None when it is not one of ours."""
        try:
            raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
        except (ValueError, TypeError):
            return None
        mac, plain = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        expected = hmac.new(self._key, plain, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            proto, host, port = plain.decode().split("|")
            return Endpoint(proto, host, int(port))
        except ValueError:  # also UnicodeDecodeError
            return None
