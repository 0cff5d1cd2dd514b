"""Percent-escaping of SIP and HTTP values (Kamailio's ``{s.escape.param}`` and friends).

SIP URIs (RFC 3261 §25.1) leave different characters unescaped in the user part and in
parameters; HTTP query values (RFC 3986) need ``&``, ``=`` and ``+`` escaped too, which the
SIP param rules keep. Use :func:`escape_query` for building HTTP URLs.

Kamailio writes lower-case hex and rejects non-ASCII input; here non-ASCII text is escaped
as its UTF-8 bytes instead.
"""
from __future__ import annotations

import string
from urllib.parse import quote, unquote

from kamrouter.sip import wire_bytes

_ALNUM = string.ascii_letters + string.digits
_MARK = "-_.!~*'()"
#: unreserved / param-unreserved (RFC 3261 §25.1)
_PARAM_SAFE = frozenset(_ALNUM + _MARK + "[]/:&+$")
#: unreserved / user-unreserved
_USER_SAFE = frozenset(_ALNUM + _MARK + "&=+$,;?/")


def _escape(value: str, safe: frozenset[str]) -> str:
    out = []
    for char in value:
        if char in safe:
            out.append(char)
        else:
            out.extend(f"%{byte:02x}" for byte in wire_bytes(char))  # bytes as received
    return "".join(out)


def escape_param(value: str) -> str:
    """Escape for a SIP URI parameter value (``s.escape.param``)."""
    return _escape(value, _PARAM_SAFE)


def escape_user(value: str) -> str:
    """Escape for the user part of a SIP URI (``s.escape.user``)."""
    return _escape(value, _USER_SAFE)


def unescape(value: str) -> str:
    """Undo percent-escaping (``s.unescape.param`` / ``s.unescape.user``)."""
    return unquote(value)


def escape_query(value: str) -> str:
    """Escape for an HTTP query value or path segment: everything but RFC 3986 unreserved."""
    return quote(value, safe="")
