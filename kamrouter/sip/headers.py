"""Header names (case, compact forms, canonical spelling) and value splitting.

A header's *key* is its lower-case long name (``"call-id"``, ``"via"``); every lookup goes
through :func:`key_of`, which caches the mapping from names as received to keys.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from .errors import SipParseError

# Compact forms: RFC 3261 (i m e l c f s k t v), 3265 (o u), 3515 (r), 3892 (b), 4028 (x),
# 4474 (y n), 3841 (a j d).
COMPACT: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "y": "identity",
    "n": "identity-info",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
}

# Spelling used when we write a header line and in Message.headers.
_CANONICAL_NAMES = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "History-Info",
    "Identity", "Identity-Info", "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE",
    "MIME-Version", "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path",
    "Priority", "Privacy", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck",
    "Reason", "Record-Route", "Refer-To", "Referred-By", "Reject-Contact", "Replaces",
    "Reply-To", "Request-Disposition", "Require", "Retry-After", "Route", "RSeq",
    "Security-Client", "Security-Server", "Security-Verify", "Server", "Service-Route",
    "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject", "Subscription-State",
    "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning",
    "WWW-Authenticate",
]
CANONICAL: dict[str, str] = {name.lower(): name for name in _CANONICAL_NAMES}

# Headers that may appear only once (RFC 4475 §3.3.8/§3.3.9 and the transaction layer).
SINGLE_VALUED = ("to", "from", "call-id", "cseq", "max-forwards", "content-length")
MANDATORY = ("via", "from", "to", "call-id", "cseq")

# Headers whose grammar is a comma-separated list: get_all() splits only these.
LIST_HEADERS = frozenset({
    "accept", "accept-contact", "accept-encoding", "accept-language", "alert-info", "allow",
    "allow-events", "call-info", "contact", "content-encoding", "content-language",
    "error-info", "history-info", "in-reply-to", "p-asserted-identity",
    "p-preferred-identity", "path", "proxy-require", "reason", "record-route",
    "reject-contact", "request-disposition", "require", "route", "security-client",
    "security-server", "security-verify", "service-route", "supported", "unsupported", "via",
    "warning",
})

_TOKEN_NAME = re.compile(r"[A-Za-z0-9.!%*_+`'~\-]+[ \t]*\Z")
_KEYS: dict[str, str] = {}
_KEYS_LIMIT = 4096  # bounds the cache: header names are attacker-controlled


def key_of(name: str) -> str:
    """Lower-case long header name for ``name`` as received (``"v "`` → ``"via"``).

    Raises SipParseError for a name that is not a token.
    """
    key = _KEYS.get(name)
    if key is not None:
        return key
    if _TOKEN_NAME.match(name) is None:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise SipParseError(400, f"Bad header name: {shown!r}")
    key = name.rstrip(" \t").lower()
    key = COMPACT.get(key, key)
    if len(_KEYS) < _KEYS_LIMIT:
        _KEYS[name] = key
    return key


# Parsing looks header lines up by their text up to and including the colon ("Via :"), so a
# line without a colon can never hit the cache; misses go through line_key().
LINE_KEYS: dict[str, str] = {}


def line_key(line: str) -> str:
    """Header key of a raw header line; SipParseError when it has no ``name:``."""
    colon = line.find(":")
    if colon < 1:
        raise SipParseError(400, f"Malformed header line {line[:40]!r}")
    key = key_of(line[:colon])
    if len(LINE_KEYS) < _KEYS_LIMIT:
        LINE_KEYS[line[: colon + 1]] = key
    return key


def display_name(key: str, as_given: str) -> str:
    """Spelling to write for a header: canonical for known headers, else as given."""
    return CANONICAL.get(key) or as_given.strip()


def unfold(value: str) -> str:
    """Replace each folded line break (CRLF + whitespace) by one space."""
    if "\n" not in value:
        return value
    return _FOLD.sub(" ", value)


_FOLD = re.compile(r"[ \t]*\r?\n[ \t]+")


def split_commas(value: str) -> list[str]:
    """Split a header value at commas that are outside quotes and ``<>``; items stripped.

    Empty items are kept (callers decide whether ``a,,b`` is an error).
    """
    if "," not in value:
        return [value.strip()]
    if '"' not in value and "<" not in value:
        return [item.strip() for item in value.split(",")]
    items: list[str] = []
    start = 0
    for comma in _top_level_commas(value):
        items.append(value[start:comma].strip())
        start = comma + 1
    items.append(value[start:].strip())
    return items


def first_comma(value: str) -> int:
    """Index of the first comma outside quotes and ``<>``, or -1."""
    if "," not in value:
        return -1
    if '"' not in value and "<" not in value:
        return value.find(",")
    return next(_top_level_commas(value), -1)


def _top_level_commas(value: str) -> Iterator[int]:
    pos = 0
    search = _DELIMITER.search
    while (m := search(value, pos)) is not None:
        ch = m.group()
        if ch == ",":
            yield m.start()
            pos = m.end()
            continue
        if ch == "<":
            close = value.find(">", m.end())
        else:
            quoted = _QUOTED.match(value, m.start())
            close = quoted.end() - 1 if quoted else -1
        if close < 0:
            return  # unbalanced: the rest is one item, its parser reports the error
        pos = close + 1


_DELIMITER = re.compile(r'[",<]')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
