"""name-addr / addr-spec values (From, To, Contact, Route, Record-Route, ...)."""
from __future__ import annotations

import re

from .errors import SipParseError, bad
from .headers import split_commas
from .params import PLAIN_PARAMS, parse_params, split_plain_params
from .uri import Uri, parse_uri

_TOKENS = re.compile(r"[A-Za-z0-9.!%*_+`'~\-]+(?:[ \t]+[A-Za-z0-9.!%*_+`'~\-]+)*\Z")
# The shapes nearly every From/To/Route value has: ``<uri>``, ``Display Name <uri>``,
# ``"Display" <uri>`` (no escapes) or a bare ``uri`` without ``?,;``, then token parameters.
# One match validates all but the URI, which parse_uri checks (usually from its cache).
_PLAIN = re.compile(
    r"""(?:(?:([A-Za-z0-9.!%*_+`'~\-]+(?:[ \t]+[A-Za-z0-9.!%*_+`'~\-]+)*)[ \t]*|"([^"\\]*)"[ \t]*)?"""
    rf"""<([^\s<>"]+)>|([^\s<>"?,;]+))({PLAIN_PARAMS})\Z"""
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_NEEDS_QUOTES = re.compile(r"[^A-Za-z0-9.!%*_+`'~\- ]")
MAX_DELTA_SECONDS = 2**32 - 1  # RFC 3261 §20.19: larger values are taken as 2**32-1


def delta_seconds(digits: str) -> int:
    """A delta-seconds value (larger ones mean 2**32-1), without turning a hostile
    5,000-digit string into an integer."""
    return MAX_DELTA_SECONDS if len(digits.lstrip("0")) > 10 else min(int(digits), MAX_DELTA_SECONDS)


class NameAddr:
    """A display name, a URI and header parameters (``tag``, ``expires``, ``q``, ...).

    Immutable; ``str()`` gives the text it was parsed from (or a canonical rendering).
    """

    __slots__ = ("display", "uri", "params", "_text")

    def __init__(
        self,
        uri: Uri,
        display: str | None = None,
        params: dict[str, str | None] | None = None,
        *,
        _text: str | None = None,
    ) -> None:
        self.uri = uri
        self.display = display
        self.params: dict[str, str | None] = params or {}
        self._text = _text

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        value = self.params.get("expires")
        if value is None:
            return None
        if not value.isdigit() or not value.isascii():
            raise bad("expires parameter", f"not a number: {value[:20]!r}")
        return delta_seconds(value)

    @property
    def q(self) -> float | None:
        value = self.params.get("q")
        if value is None:
            return None
        try:
            q = float(value)
        except ValueError:
            q = -1.0
        if not 0.0 <= q <= 1.0:
            raise bad("q parameter", f"out of range: {value[:20]!r}")
        return q

    def with_params(self, **params: str | None) -> NameAddr:
        """New NameAddr with these header parameters set (``None`` = flag)."""
        merged = dict(self.params)
        for name, value in params.items():
            merged[name.lower()] = value
        return NameAddr(self.uri, self.display, merged)

    def __str__(self) -> str:
        if self._text is not None:
            return self._text
        text = f"<{self.uri}>"
        if self.display is not None:
            display = self.display
            if _NEEDS_QUOTES.search(display) or not display:
                display = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
            text = f"{display} {text}"
        for name, value in self.params.items():
            text += f";{name}" if value is None else f";{name}={value}"
        return text

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NameAddr) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))


def parse_name_addr(text: str, what: str = "name-addr") -> NameAddr:
    """Parse a name-addr (``"Alice" <sip:a@x>;tag=1``) or addr-spec (``sip:a@x;tag=1``)."""
    plain = _PLAIN.match(text)
    if plain is None:
        return _parse_general(text, what)
    display, quoted, uri_text, bare_uri_text, param_text = plain.groups()
    params = split_plain_params(param_text) if param_text else {}
    uri = _uri(bare_uri_text if uri_text is None else uri_text, what)
    return NameAddr(uri, display if quoted is None else quoted, params, _text=text)


def _parse_general(text: str, what: str) -> NameAddr:
    s = text.strip(" \t")
    if s[:1] == '"':
        end = _closing_quote(s)
        if end < 0:
            raise bad(what, "unterminated quoted display name")
        display: str | None = _QUOTED_PAIR.sub(r"\1", s[1:end])
        rest = s[end + 1:].lstrip(" \t")
        if rest[:1] != "<":
            raise bad(what, "expected '<' after the display name")
    else:
        lt = s.find("<")
        semi = s.find(";")
        if lt >= 0 and (semi < 0 or lt < semi):
            display = s[:lt].rstrip(" \t") or None
            if display is not None and not _TOKENS.match(display):
                raise bad(what, f"display name {display[:40]!r} must be quoted")
            rest = s[lt:]
        else:
            return _addr_spec(s, semi, text, what)
    gt = rest.find(">")
    if gt < 0:
        raise bad(what, "missing '>'")
    uri_text = rest[1:gt]
    if uri_text != uri_text.strip(" \t"):
        raise bad(what, "whitespace inside <>")
    return NameAddr(_uri(uri_text, what), display, parse_params(rest[gt + 1:], what), _text=text.strip())


def _addr_spec(s: str, semi: int, text: str, what: str) -> NameAddr:
    uri_text = (s[:semi] if semi >= 0 else s).rstrip(" \t")
    if "?" in uri_text or "," in uri_text:
        raise bad(what, "a URI with '?' or ',' must be enclosed in <>")
    params = parse_params(s[semi:], what) if semi >= 0 else {}
    return NameAddr(_uri(uri_text, what), None, params, _text=text.strip())


def _uri(text: str, what: str) -> Uri:
    try:
        return parse_uri(text)
    except SipParseError as err:
        raise bad(what, err.reason.removeprefix("Bad ")) from None


def _closing_quote(s: str) -> int:
    i = 1
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i
        i += 1
    return -1


def parse_name_addr_list(value: str, what: str) -> list[NameAddr]:
    """Parse a comma-separated list of name-addr values; an empty item is an error."""
    result = []
    for item in split_commas(value):
        if not item:
            raise bad(what, "empty list item")
        result.append(parse_name_addr(item, what))
    return result
