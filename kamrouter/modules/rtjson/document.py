"""The rtjson route document: parsing and validation (sans-IO).

A controller answers with a document such as::

    {"version": "1.0", "routing": "serial",
     "routes": [{"uri": "sip:+4930123@gw1", "dst_uri": "sip:10.0.0.7:5060",
                 "headers": {"extra": "X-Route: one\\r\\n"}, "fr_timer": 2000},
                {"uri": "sip:+4930123@gw2"}]}

Field names and meanings are Kamailio's rtjson (see ``docs`` in the module README). The
validator reports *every* problem, each naming its field by path, e.g.
``routes[1].fr_timer: expected integer milliseconds, got string '2s'``.

Differences from Kamailio, all on the strict side: unknown keys inside a route (or its
``headers``) are errors with a did-you-mean hint, since a misspelt ``fr_timeout`` would
otherwise be ignored silently; top-level keys other than ``version``/``routing``/``routes``
are ignored, because the document often travels with correlation ids (``tindex``,
``tlabel``, ``id``). ``headers.extra`` may not set the headers a proxy must keep consistent
(Via, Call-ID, CSeq, ...; From/To go through ``headers.from``/``headers.to``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kamrouter.config import describe_value as describe
from kamrouter.config import unknown_key
from kamrouter.net import parse_socket
from kamrouter.sip import SipParseError, parse_uri

Routing = Literal["serial", "parallel"]

_ROUTE_KEYS = ("uri", "dst_uri", "path", "socket", "headers", "branch_flags", "fr_timer",
               "fr_inv_timer")
_HEADER_KEYS = ("from", "to", "extra")
_NAME_ADDR_KEYS = ("display", "uri")
#: Headers ``headers.extra`` may not add: changing them would break the transaction or dialog.
_PROTECTED_HEADERS = frozenset({"via", "v", "call-id", "i", "cseq", "content-length", "l",
                                "from", "f", "to", "t", "max-forwards"})
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_URI_SCHEMES = ("sip:", "sips:", "tel:")
_NO_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_MAX_FLAGS = 2**32 - 1


class RouteDocumentError(ValueError):
    """A route document that cannot be used; ``problems`` lists every bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class NameAddrRewrite:
    """A From/To replacement: ``None`` keeps the original part, ``""`` display removes it."""

    display: str | None
    uri: str | None


@dataclass(frozen=True, slots=True)
class Route:
    uri: str | None = None
    dst_uri: str | None = None
    path: str | None = None
    socket: str | None = None
    from_: NameAddrRewrite | None = None
    to: NameAddrRewrite | None = None
    #: ``headers.extra`` split into (name, value) pairs.
    extra_headers: tuple[tuple[str, str], ...] = ()
    branch_flags: int = 0
    #: Per-branch timers in ms; 0 leaves the transaction's value unchanged.
    fr_timer: int = 0
    fr_inv_timer: int = 0

    @property
    def per_branch(self) -> bool:
        """The route has attributes a branch route applies (``rtjson.update_branch``)."""
        return bool(self.fr_timer or self.fr_inv_timer or self.path or self.extra_headers
                    or self.from_ is not None or self.to is not None or self.branch_flags)


@dataclass(frozen=True, slots=True)
class RouteDocument:
    version: str
    routing: Routing
    routes: tuple[Route, ...]

    @property
    def needs_branch_route(self) -> bool:
        """Some route has per-branch attributes: arm a branch route calling update_branch."""
        return any(route.per_branch for route in self.routes)


def parse_document(source: str | bytes | Mapping[str, Any]) -> RouteDocument:
    """Parse and validate a route document given as JSON text or an already decoded object.

    Raises :class:`RouteDocumentError` listing every problem.
    """
    if isinstance(source, (str, bytes, bytearray)):
        try:
            source = json.loads(source)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RouteDocumentError([f"document: invalid JSON: {exc}"]) from None
    if not isinstance(source, Mapping):
        raise RouteDocumentError([f"document: expected a JSON object, got {describe(source)}"])
    problems: list[str] = []
    version = source.get("version", "")
    if not isinstance(version, (str, int, float)) or isinstance(version, bool):
        problems.append(f"version: expected string, got {describe(version)}")
    routing = source.get("routing")
    if routing not in ("serial", "parallel"):
        got = "missing" if routing is None else f"got {describe(routing)}"
        problems.append(f"routing: expected 'serial' or 'parallel', {got}")
    raw_routes = source.get("routes")
    routes: list[Route] = []
    if not isinstance(raw_routes, list) or not raw_routes:
        got = "missing" if raw_routes is None else f"got {describe(raw_routes)}"
        problems.append(f"routes: expected a non-empty array of route objects, {got}")
    else:
        routes = [_route(raw, f"routes[{i}]", problems) for i, raw in enumerate(raw_routes)]
    if problems:
        raise RouteDocumentError(problems)
    return RouteDocument(str(version), routing, tuple(routes))  # type: ignore[arg-type]


def _unknown_keys(raw: Mapping[str, Any], known: tuple[str, ...], where: str,
                  problems: list[str]) -> None:
    for key in raw:
        if key not in known:
            problems.append(f"{where}: {unknown_key(key, known)}")


def _route(raw: Any, where: str, problems: list[str]) -> Route:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a route object, got {describe(raw)}")
        return Route()
    _unknown_keys(raw, _ROUTE_KEYS, where, problems)
    from_ = to = None
    extra: tuple[tuple[str, str], ...] = ()
    headers = raw.get("headers")
    if headers is not None:
        if isinstance(headers, Mapping):
            _unknown_keys(headers, _HEADER_KEYS, f"{where}.headers", problems)
            from_ = _name_addr(headers.get("from"), f"{where}.headers.from", problems)
            to = _name_addr(headers.get("to"), f"{where}.headers.to", problems)
            extra = _extra_headers(headers.get("extra"), f"{where}.headers.extra", problems)
        else:
            problems.append(f"{where}.headers: expected an object with from/to/extra, "
                            f"got {describe(headers)}")
    # Only keys present are checked (and their error locations formatted): most routes
    # carry a URI and little else, and this runs for every call.
    get = raw.get
    path, socket, flags, fr_timer, fr_inv_timer = (
        get("path"), get("socket"), get("branch_flags"), get("fr_timer"), get("fr_inv_timer"))
    dst_uri = get("dst_uri")
    return Route(
        uri=_uri(get("uri"), f"{where}.uri", _URI_SCHEMES, problems),
        dst_uri=None if dst_uri is None else _uri(dst_uri, f"{where}.dst_uri",
                                                  ("sip:", "sips:"), problems),
        path=None if path is None else _path(path, f"{where}.path", problems),
        socket=None if socket is None else _socket(socket, f"{where}.socket", problems),
        from_=from_,
        to=to,
        extra_headers=extra,
        branch_flags=0 if flags is None else _uint(
            flags, f"{where}.branch_flags", "unsigned 32-bit integer", _MAX_FLAGS, problems),
        fr_timer=0 if fr_timer is None else _uint(
            fr_timer, f"{where}.fr_timer", "integer milliseconds", None, problems),
        fr_inv_timer=0 if fr_inv_timer is None else _uint(
            fr_inv_timer, f"{where}.fr_inv_timer", "integer milliseconds", None, problems),
    )


def _text(value: Any, where: str, problems: list[str]) -> str | None:
    """A single-line string (CR/LF would let a controller inject header lines)."""
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{where}: expected string, got {describe(value)}")
        return None
    if _NO_CONTROLS.search(value):
        problems.append(f"{where}: control characters (CR, LF, ...) are not allowed")
        return None
    return value


def _uri(value: Any, where: str, schemes: tuple[str, ...], problems: list[str]) -> str | None:
    before = len(problems)
    text = _text(value, where, problems)
    if text is None or len(problems) > before:
        return None
    scheme = text.partition(":")[0].lower() + ":"
    if scheme not in schemes:
        problems.append(f"{where}: expected a {_names(schemes)} URI, got {describe(value)}")
        return None
    try:
        parse_uri(text)
    except SipParseError as exc:
        problems.append(f"{where}: expected a {_names(schemes)} URI, got {describe(value)} "
                        f"({exc.reason})")
        return None
    return text


def _names(schemes: tuple[str, ...]) -> str:
    return "/".join(scheme.rstrip(":") for scheme in schemes)


def _path(value: Any, where: str, problems: list[str]) -> str | None:
    text = _text(value, where, problems)
    if text is not None and "sip" not in text.lower():
        problems.append(f"{where}: expected comma-separated <sip:...> addresses, "
                        f"got {describe(value)}")
        return None
    return text or None


def _socket(value: Any, where: str, problems: list[str]) -> str | None:
    text = _text(value, where, problems)
    if text is None:
        return None
    try:
        return str(parse_socket(text))
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _uint(value: Any, where: str, expected: str, maximum: int | None,
          problems: list[str]) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (
            maximum is not None and value > maximum):
        problems.append(f"{where}: expected {expected}, got {describe(value)}")
        return 0
    return value


def _name_addr(value: Any, where: str, problems: list[str]) -> NameAddrRewrite | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected an object with display and/or uri, "
                        f"got {describe(value)}")
        return None
    _unknown_keys(value, _NAME_ADDR_KEYS, where, problems)
    if "display" not in value and "uri" not in value:
        problems.append(f"{where}: expected display and/or uri")
        return None
    display = _text(value.get("display"), f"{where}.display", problems)
    uri = _uri(value.get("uri"), f"{where}.uri", _URI_SCHEMES, problems)
    return NameAddrRewrite(display, uri)


def _extra_headers(value: Any, where: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """Split ``"Name: value\\r\\nName2: value2\\r\\n"`` into pairs (the final CRLF is optional)."""
    if value is None:
        return ()
    if not isinstance(value, str):
        problems.append(f"{where}: expected string of 'Name: value' lines, got {describe(value)}")
        return ()
    pairs = []
    for number, line in enumerate(value.replace("\r\n", "\n").split("\n"), start=1):
        if not line:
            continue
        name, colon, header_value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.fullmatch(name) or _NO_CONTROLS.search(header_value):
            problems.append(f"{where}: line {number} {line[:40]!r} is not a 'Name: value' header")
        elif name.lower() in _PROTECTED_HEADERS:
            problems.append(f"{where}: line {number} may not set {name} "
                            f"(use headers.from/to for From and To)")
        else:
            pairs.append((name, header_value.strip()))
    return tuple(pairs)
