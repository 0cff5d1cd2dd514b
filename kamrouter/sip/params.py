"""``;name=value`` parameter lists of header fields (Via, name-addr, Contact)."""
from __future__ import annotations

import re

from .errors import bad

_T = r"[A-Za-z0-9.!%*_+`'~\-]+"
# gen-value = token / host / quoted-string; host may be an IPv6 reference, and RFC 5118 §4.5
# asks to accept an unbracketed IPv6 address in Via received=.
_HOST_OR_TOKEN = r"[A-Za-z0-9.!%*_+`'~\-:\[\]]+"
_V = _HOST_OR_TOKEN + "|" + r'"(?:[^"\\]|\\.)*"'
# Pattern for the parameter lists nearly every message carries: ``;name`` / ``;name=value``
# with token or host values, no whitespace, no quotes. Text it matches can be split at ``;``
# and ``=`` without further checks (split_plain_params).
PLAIN_PARAMS = rf"(?:;{_T}(?:={_HOST_OR_TOKEN})?)*"
_TOKEN = re.compile(_T + r"\Z")
_VALUE = re.compile(rf"(?:{_V})\Z", re.S)
# Fast path: one regex validates the whole list, another pulls out the items.
_WELL_FORMED = re.compile(rf"(?:[ \t]*;[ \t]*{_T}(?:[ \t]*=[ \t]*(?:{_V}))?)*[ \t]*\Z", re.S)
_ITEM = re.compile(rf";[ \t]*({_T})(?:[ \t]*=[ \t]*({_V}))?", re.S)


def split_semicolons(text: str) -> list[str]:
    """Split at ``;`` outside quoted strings."""
    if '"' not in text:
        return text.split(";")
    items: list[str] = []
    start = 0
    in_quotes = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == ";":
            items.append(text[start:i])
            start = i + 1
        i += 1
    if in_quotes:
        raise ValueError("unterminated quoted string")
    items.append(text[start:])
    return items


def split_plain_params(text: str) -> dict[str, str | None]:
    """{lower-case name: value} of a list that matched PLAIN_PARAMS; the first name wins."""
    params: dict[str, str | None] = {}
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        params.setdefault(name.lower(), value if eq else None)
    return params


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """Parse ``;a=b;c`` (the text from the first ``;``) into {lower-case name: value}.

    Whitespace around ``;`` and ``=`` is allowed; values are kept as received (quoted
    strings keep their quotes). The first occurrence of a name wins. ``what`` names the
    header in error reasons.
    """
    params: dict[str, str | None] = {}
    if not text:
        return params
    if _WELL_FORMED.match(text):
        for name, value in _ITEM.findall(text):
            params.setdefault(name.lower(), value or None)
        return params
    # slow path: find the item at fault and name it
    try:
        items = split_semicolons(text)
    except ValueError:
        raise bad(what, "unterminated quoted string in parameters") from None
    if items[0].strip():
        raise bad(what, f"unexpected text {items[0].strip()[:40]!r} before parameters")
    for item in items[1:]:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not _TOKEN.match(name):
            raise bad(what, f"bad parameter name {name[:40]!r}" if name else "empty parameter")
        if eq:
            value = value.strip()
            if not _VALUE.match(value):
                raise bad(what, f"bad value for parameter {name!r}")
            params.setdefault(name.lower(), value)
        else:
            params.setdefault(name.lower(), None)
    return params  # only reached for input the fast path should have accepted
