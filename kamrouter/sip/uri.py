"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966); other schemes kept opaque.

Escapes are kept exactly as received; ``user_unescaped`` decodes them once, for comparison.
``str(uri)`` is the text the URI was parsed from.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from .errors import SipParseError, bad
from .params import split_plain_params

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_ESC = r"%[0-9A-Fa-f]{2}"
_USER = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{_ESC})+\Z")
_PASSWORD = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|{_ESC})*\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*)\Z")
_IPV6_REF = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
_PARAM_PART = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|{_ESC})+\Z")
_HEADER_PART = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|{_ESC})*\Z")
_KEEP = object()  # replace(): "leave the port as it is"
_FORBIDDEN = re.compile(r'[\s<>"]')
_TEL_NUMBER = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW%]+\Z")
# The shape nearly every SIP URI has: ``user@host:port;param=value`` without escapes, a
# password or headers. One match (after the scheme) validates all of it.
_PLAIN_PARAM = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+"
_PLAIN_SIP = re.compile(
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,/]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9\-_.]*)"
    rf"(?::([0-9]{{1,5}}))?((?:;{_PLAIN_PARAM}(?:={_PLAIN_PARAM})?)*)\Z"
)


class AbsoluteUri:
    """A URI of a scheme we do not interpret: scheme plus opaque text."""

    __slots__ = ("scheme", "opaque", "_text")

    def __init__(self, text: str, scheme: str) -> None:
        self._text = text
        self.scheme = scheme
        self.opaque = text[len(scheme) + 1:]

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and str(other) == self._text

    def __hash__(self) -> int:
        return hash(self._text)


class TelUri(AbsoluteUri):
    """``tel:`` URI (RFC 3966): ``number`` and ``params``."""

    __slots__ = ("number", "params")

    def __init__(self, text: str, scheme: str) -> None:
        super().__init__(text, scheme)
        number, _, param_text = self.opaque.partition(";")
        if not _TEL_NUMBER.match(number):
            raise bad("URI", f"bad telephone number {number[:40]!r}")
        self.number = number
        self.params = _uri_params(";" + param_text) if param_text else {}


class SipUri:
    """``sip:`` / ``sips:`` URI. Immutable: ``with_params``/``replace`` return new URIs."""

    __slots__ = (
        "_text", "scheme", "user", "password", "host", "port", "params", "headers",
        "_param_text", "_header_text",
    )
    user: str | None
    password: str | None
    host: str
    port: int | None
    params: dict[str, str | None]
    headers: dict[str, str]

    def __init__(self, text: str, scheme: str, plain: re.Match[str] | None = None) -> None:
        """``plain``: parse_uri's match of the common shape (then nothing is left to check)."""
        self._text = text
        self.scheme = scheme
        if plain is None:
            self._parse(text[len(scheme) + 1:])
            return
        self.user, self.host, port, self._param_text = plain.groups()
        self.password = None
        self.port = None if port is None else _port(port)
        self.params = split_plain_params(self._param_text) if self._param_text else {}
        self._header_text = ""
        self.headers = {}

    def _parse(self, rest: str) -> None:
        """The general grammar: escapes, password, headers, IPv6 references."""
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1:]
            user, colon, password = userinfo.partition(":")
            if not _USER.match(user):
                raise bad("URI", f"bad user part {user[:40]!r}")
            if colon and not _PASSWORD.match(password):
                raise bad("URI", "bad password")
            self.user = user
            self.password = password if colon else None
        else:
            self.user = self.password = None
        q = rest.find("?")
        self._header_text = rest[q:] if q >= 0 else ""
        if q >= 0:
            rest = rest[:q]
        s = rest.find(";")
        self._param_text = rest[s:] if s >= 0 else ""
        hostport = rest[:s] if s >= 0 else rest
        self.host, self.port = _split_hostport(hostport)
        self.params = _uri_params(self._param_text) if self._param_text else {}
        self.headers = _uri_headers(self._header_text[1:]) if self._header_text else {}

    @property
    def host_ip(self) -> str:
        """Host without the brackets of an IPv6 reference."""
        host = self.host
        return host[1:-1] if host[:1] == "[" else host

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def user_unescaped(self) -> str | None:
        """User part with %HH escapes decoded once (for comparisons, never for forwarding)."""
        return None if self.user is None else unquote(self.user, errors="surrogateescape")

    def with_params(self, **params: str | None) -> SipUri:
        """New URI with these parameters set (``None`` = flag without value)."""
        merged = dict(self.params)
        for name, value in params.items():
            merged[name.lower()] = value
        return _build(self, self.host, self.port, merged)

    def without_params(self, *names: str) -> SipUri:
        """New URI without these parameters."""
        drop = {name.lower() for name in names}
        return _build(self, self.host, self.port,
                      {k: v for k, v in self.params.items() if k not in drop})

    def replace(self, *, host: str | None = None, port: int | None | object = _KEEP) -> SipUri:
        """New URI with another host and/or port (``port=None`` removes the port)."""
        new_port = self.port if port is _KEEP else port
        return _build(self, host or self.host, new_port, None)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"SipUri({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SipUri) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


Uri = SipUri | TelUri | AbsoluteUri


def _build(uri: SipUri, host: str, port: int | None, params: dict[str, str | None] | None) -> SipUri:
    userinfo = ""
    if uri.user is not None:
        userinfo = uri.user + (f":{uri.password}" if uri.password is not None else "") + "@"
    hostport = host if port is None else f"{host}:{port}"
    if params is None:
        param_text = uri._param_text
    else:
        param_text = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())
    return parse_uri(f"{uri.scheme}:{userinfo}{hostport}{param_text}{uri._header_text}")  # type: ignore[return-value]


def _split_hostport(hostport: str) -> tuple[str, int | None]:
    if hostport[:1] == "[":
        close = hostport.find("]")
        host, after = hostport[:close + 1], hostport[close + 1:]
        if close < 0 or not _IPV6_REF.match(host):
            raise bad("URI", f"bad IPv6 reference {hostport[:60]!r}")
        if after and after[0] != ":":
            raise bad("URI", f"bad text after IPv6 reference {after[:40]!r}")
        port_text = after[1:] if after else None
    else:
        host, colon, port_text_ = hostport.partition(":")
        port_text = port_text_ if colon else None
        if not _HOSTNAME.match(host):
            raise bad("URI", f"bad host {host[:60]!r}" if host else "missing host")
    return host, _port(port_text)


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or not text.isascii() or len(text) > 5 or int(text) > 65535:
        raise bad("URI", f"bad port {text[:20]!r}")
    return int(text)


def _uri_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        if not _PARAM_PART.match(name) or (eq and not _PARAM_PART.match(value)):
            raise bad("URI", f"bad parameter {item[:40]!r}" if item else "empty parameter")
        params.setdefault(name.lower(), value if eq else None)
    return params


def _uri_headers(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not name or not eq or not _HEADER_PART.match(name) or not _HEADER_PART.match(value):
            raise bad("URI", f"bad header {item[:40]!r}")
        headers.setdefault(name, value)
    return headers


_CACHE: dict[str, Uri] = {}
_CACHE_LIMIT = 2048  # URIs repeat (Route, Record-Route, our own); bounded: they are input


def sip_uri_problem(text: str) -> str | None:
    """What keeps ``text`` from being a valid sip:/sips: URI (for config checks), or None."""
    try:
        parse_uri(text, require_sip=True)
    except SipParseError as exc:
        return f"expected a sip: or sips: URI, got {text!r} ({exc.reason})"
    return None


def parse_uri(text: str, require_sip: bool = False) -> Uri:
    """Parse a URI. Unknown schemes give an AbsoluteUri, or 416 when ``require_sip``."""
    uri = _CACHE.get(text)
    if uri is None:
        uri = _new_uri(text)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()  # start over: the URIs of today's traffic, not the first 2048 seen
        _CACHE[text] = uri
    if require_sip and type(uri) is AbsoluteUri:
        raise SipParseError(416, f"Unsupported URI Scheme: {uri.scheme}")
    return uri


def _new_uri(text: str) -> Uri:
    colon = text.find(":")
    scheme = text[:colon].lower() if colon > 0 else ""
    is_sip = scheme == "sip" or scheme == "sips"
    if is_sip and (plain := _PLAIN_SIP.match(text, colon + 1)) is not None:
        return SipUri(text, scheme, plain)
    if not _SCHEME.match(scheme):
        raise bad("URI", f"no scheme in {text[:60]!r}")
    if _FORBIDDEN.search(text):
        raise bad("URI", f"whitespace or delimiter inside {text[:60]!r}")
    if is_sip:
        return SipUri(text, scheme)
    if scheme == "tel":
        return TelUri(text, scheme)
    return AbsoluteUri(text, scheme)
