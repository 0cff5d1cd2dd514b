"""Digest credentials and challenges (Authorization, WWW-Authenticate, RFC 3261 §22/§25)."""
from __future__ import annotations

import re

from .errors import bad
from .headers import split_commas

_SCHEME = re.compile(r"[ \t]*([A-Za-z0-9.!%*_+`'~\-]+)(?:[ \t]+|\Z)")
_PARAM = re.compile(r"""([A-Za-z0-9.!%*_+`'~\-]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^\s",]+)\Z""", re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
# The usual shape of a parameter list (no quoted-pairs, no empty items), split in one pass
# by a precompiled pattern whose matches must tile the list, instead of a comma split and a
# match per item; anything else takes the general path, with the same result.
_PLAIN_ITEM = re.compile(
    r"""[ \t]*([A-Za-z0-9.!%*_+`'~\-]+)[ \t]*=[ \t]*(?:"([^"\\]*)"|([^\s",]+))[ \t]*(?:,|\Z)""")


class _AuthValue:
    """A scheme and its ``name=value`` parameters (names lower case, quotes removed)."""

    __slots__ = ("scheme", "params", "_text")

    def __init__(self, scheme: str, params: dict[str, str], _text: str | None = None) -> None:
        self.scheme = scheme
        self.params = params
        self._text = _text

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    def __str__(self) -> str:
        if self._text is not None:
            return self._text
        quoted = _QUOTED_PARAMS
        items = ", ".join(
            f'{k}="{v}"' if k in quoted else f"{k}={v}" for k, v in self.params.items()
        )
        return f"{self.scheme} {items}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))


# Digest parameters that RFC 3261/2617 write as quoted strings.
_QUOTED_PARAMS = frozenset({"username", "realm", "nonce", "uri", "response", "cnonce", "opaque", "domain"})


def _param(name: str) -> property:
    return property(lambda self: self.params.get(name), doc=f"The {name} parameter, or None.")


class Credentials(_AuthValue):
    """Authorization / Proxy-Authorization value: ``.username``, ``.realm``, ``.nonce``,
    ``.uri``, ``.response``, ``.algorithm``, ``.cnonce``, ``.qop``, ``.nc``, ``.opaque``."""

    __slots__ = ()
    username = _param("username")
    realm = _param("realm")
    nonce = _param("nonce")
    uri = _param("uri")
    response = _param("response")
    algorithm = _param("algorithm")
    cnonce = _param("cnonce")
    qop = _param("qop")
    nc = _param("nc")
    opaque = _param("opaque")


class Challenge(_AuthValue):
    """WWW-Authenticate / Proxy-Authenticate value: ``.realm``, ``.nonce``, ``.opaque``,
    ``.algorithm``, ``.qop``, ``.stale``, ``.domain``."""

    __slots__ = ()
    realm = _param("realm")
    nonce = _param("nonce")
    opaque = _param("opaque")
    algorithm = _param("algorithm")
    qop = _param("qop")
    stale = _param("stale")
    domain = _param("domain")


def _parse(value: str, what: str) -> tuple[str, dict[str, str]]:
    m = _SCHEME.match(value)
    if m is None:
        raise bad(what, "missing authentication scheme")
    scheme = m.group(1)
    params: dict[str, str] = {}
    rest = value[m.end():]
    if not rest.strip():
        return scheme, params
    plain = _plain_params(rest)
    if plain is not None:
        return scheme, plain
    digest = scheme.lower() == "digest"
    for item in split_commas(rest):
        pm = _PARAM.match(item)
        if pm is None:
            if digest:
                raise bad(what, f"bad parameter {item[:40]!r}")
            continue  # other schemes may carry opaque tokens; kept in str() only
        name, raw = pm.groups()
        if raw[:1] == '"':
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
        params.setdefault(name.lower(), raw)
    return scheme, params


def _plain_params(rest: str) -> dict[str, str] | None:
    """The parameters of a list of the usual shape, or None for the general path."""
    params: dict[str, str] = {}
    end = 0
    for item in _PLAIN_ITEM.finditer(rest):
        if item.start() != end:
            return None
        end = item.end()
        name, quoted, token = item.groups()
        params.setdefault(name.lower(), token if quoted is None else quoted)
    if end != len(rest) or rest[-1:] == ",":  # something left, or a trailing comma
        return None
    return params


def parse_credentials(value: str, what: str = "Authorization") -> Credentials:
    scheme, params = _parse(value, what)
    return Credentials(scheme, params, value)


def parse_challenge(value: str, what: str = "WWW-Authenticate") -> Challenge:
    scheme, params = _parse(value, what)
    return Challenge(scheme, params, value)
