"""RFC 5626 flow tokens: the Record-Route (or Path) entry this proxy puts on the side of a
client that is reachable only over its own connection (a WebSocket browser, whose Contact
host is ``.invalid``) names that connection in its user part, so a request for the client
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

#: Transports whose clients cannot be reached by opening a connection to their Contact.
FLOW_TRANSPORTS = frozenset({"ws", "wss"})
_MAC_BYTES = 10


def flow_uri(flow: Endpoint) -> str:
    """The $du that sends a request over ``flow``'s connection."""
    return f"sip:{format_hostport(flow.host, flow.port)};transport={flow.proto}"


class FlowTokens:
    """Makes and checks the flow tokens of one router process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def for_peer(self, peer: Endpoint | None) -> str | None:
        """The token naming ``peer``'s connection when the peer is reachable only over it."""
        if peer is None or peer.proto not in FLOW_TRANSPORTS:
            return None
        return self.encode(peer)

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
