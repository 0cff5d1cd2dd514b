"""SIP requests and responses: lazy typed views over header lines, and splice editing.

A message keeps its header section as a list of raw header lines (folded lines stay one
entry, with their inner CRLFs) plus a parallel list of header keys (lower-case long names).
Typed views parse a header on first access and cache the result; edits change the line list
and drop the affected cache entries; ``to_bytes`` returns the received bytes when nothing was
edited, else joins the lines once. A request kept as those bytes to save memory (by its
transaction, once routed) is indexed again by ``Request.from_own_bytes``, without the checks.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Generic, Literal, TypeVar, overload

from .auth import Challenge, Credentials, parse_challenge, parse_credentials
from .errors import SipLimitError, SipParseError, bad
from .headers import (
    _KEYS,
    CANONICAL,
    LINE_KEYS,
    LIST_HEADERS,
    MANDATORY,
    SINGLE_VALUED,
    display_name,
    first_comma,
    key_of,
    line_key,
    split_commas,
    unfold,
)
from .nameaddr import NameAddr, delta_seconds, parse_name_addr, parse_name_addr_list
from .uri import SipUri, Uri, parse_uri
from .via import Via, parse_via_list

DEFAULT_MAX_SIZE = 65535
_TOKEN_CHARS = r"[A-Za-z0-9.!%*_+`'~\-]+"
_RURI_CHARS = r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>]+"
_TOKEN = re.compile(_TOKEN_CHARS + r"\Z")
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+\Z", re.I)
_RURI = re.compile(_RURI_CHARS + r"\Z")
_REQUEST_LINE = re.compile(rf"({_TOKEN_CHARS}) ({_RURI_CHARS}) SIP/2\.0\Z")
_CSEQ = re.compile(r"[ \t]*([0-9]+)[ \t\r\n]+([A-Za-z0-9.!%*_+`'~\-]+)[ \t]*\Z")
_DIGITS = re.compile(r"[ \t]*([0-9]+)[ \t]*\Z")
_CALL_ID = re.compile(r"[!-~]+\Z")
_CR_LF = re.compile(r"[\r\n]")
_CRLF = "\r\n"
_T = TypeVar("_T")
_M = TypeVar("_M", bound="Message")
_MANDATORY = frozenset(MANDATORY)
#: RFC 3261's methods and the usual extensions, one string each: a request (a transaction)
#: keeps this one of its method, not a copy per message.
_METHODS = {method: method for method in (
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE")}
_MISSING = object()

#: How header text maps back to the bytes received: parse() decodes with this error
#: handler, so a byte that is not UTF-8 (0xff in a Call-ID) survives the round trip.
WIRE_ERRORS = "surrogateescape"


def wire_bytes(text: str) -> bytes:
    """Bytes of message text as on the wire (also for hashing header values); never raises
    on text parse() produced."""
    return text.encode("utf-8", WIRE_ERRORS)


class HeaderLimits:
    """How many header lines, and Via / Route / Record-Route values, one message may carry.

    The defaults: 70 is RFC 3261's initial Max-Forwards (§8.1.1.6) and every proxy adds one
    Via (at most two Record-Route values) while it takes one off, so a message with more has
    crossed more proxies than a standard UAC allows; 256 header lines is several times what
    real traffic carries. Past a limit parse() raises SipLimitError (a 400 naming it): the
    cost of a message stays linear and small however it was forged.
    """

    __slots__ = ("headers", "_lists", "_smallest", "bound")

    def __init__(self, headers: int = 256, vias: int = 70, routes: int = 70,
                 record_routes: int = 70) -> None:
        self.headers = headers
        self._lists = (("via", "Via", vias), ("route", "Route", routes),
                       ("record-route", "Record-Route", record_routes))
        self._smallest = min(vias, routes, record_routes)
        #: Below this many header lines plus commas no limit can be exceeded: parse()
        #: calls check() only above it (the usual message costs two C-level counts).
        self.bound = min(headers, self._smallest)

    def check(self, msg: Message, head: str) -> None:
        """Raise SipLimitError when ``msg`` (indexed from ``head``) exceeds a limit."""
        names = msg._names
        if len(names) > self.headers:
            raise SipLimitError(400, f"Too Many Header Fields (more than {self.headers})", msg)
        if len(names) + head.count(",") <= self._smallest:
            return  # not even every line and comma together reach a list limit
        for key, what, limit in self._lists:
            if key in names and sum(len(split_commas(_value(line)))
                                    for line in msg._lines_of(key)) > limit:
                raise SipLimitError(400, f"Too Many {what} Values (more than {limit})", msg)


DEFAULT_LIMITS = HeaderLimits()


class CSeq:
    """CSeq value: sequence number (< 2**31) and method."""

    __slots__ = ("number", "method")

    def __init__(self, number: int, method: str) -> None:
        if not 0 <= number < 2**31:
            raise bad("CSeq", "number out of range")
        self.number = number
        self.method = method

    def __str__(self) -> str:
        return f"{self.number} {self.method}"

    def __repr__(self) -> str:
        return f"CSeq({self.number}, {self.method!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CSeq) and (other.number, other.method) == (self.number, self.method)

    def __hash__(self) -> int:
        return hash((self.number, self.method))


def _value(line: str) -> str:
    """The value of a raw header line: after the colon, unfolded, trimmed."""
    value = line[line.index(":") + 1:]
    if "\n" in value:
        value = unfold(value)
    return value.strip()


def _new_line(name: str, value: str) -> tuple[str, str]:
    """(key, line) for a header written by us; refuses values that would inject lines."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"value for header {name!r} contains CR or LF")
    key = key_of(name)
    return key, f"{display_name(key, name)}: {value}"


class _View(Generic[_M, _T]):
    """A typed view: parsed on first read, then served from the message's cache (under the
    header's key, so an edit of that header drops it). Cheaper than a property: a hit is one
    dict lookup, no closure."""

    __slots__ = ("key", "parse")

    def __init__(self, key: str, parse: Callable[[_M], _T]) -> None:
        self.key = key
        self.parse = parse

    @overload
    def __get__(self, msg: None, owner: type) -> _View[_M, _T]: ...
    @overload
    def __get__(self, msg: _M, owner: type | None = None) -> _T: ...

    def __get__(self, msg: _M | None, owner: type | None = None) -> _T | _View[_M, _T]:
        if msg is None:
            return self
        cache = msg._cache
        value = cache.get(self.key, _MISSING)  # not try/except: a miss would raise
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        try:
            value = self.parse(msg)
        except SipParseError as err:
            if err.message is None:
                err.message = msg
            raise
        except Exception as exc:  # a parser bug must still surface as a 400, never crash
            raise SipParseError(400, f"Bad {self.key} header (internal {type(exc).__name__})", msg) from exc
        cache[self.key] = value
        return value


def view(key: str) -> Callable[[Callable[[_M], _T]], _View[_M, _T]]:
    """Decorator: a method parsing a header becomes a cached typed view keyed by ``key``."""
    return lambda parse: _View(key, parse)


class Message:
    """Shared base of Request and Response."""

    __slots__ = ("_start", "_lines", "_names", "_body", "_raw", "_cache")
    is_request: bool

    _start: str
    _lines: list[str]
    _names: list[str]
    _body: bytes
    _raw: bytes | None
    _cache: dict[str, object]

    # ----------------------------------------------------------------- header access
    def get(self, name: str) -> str | None:
        """Value of the first header line called ``name`` (any case, long or compact)."""
        key = _KEYS.get(name) or key_of(name)
        names = self._names
        if key in names:  # not try/except: absent headers are common, raising costs more
            return _value(self._lines[names.index(key)])
        return None

    def get_all(self, name: str) -> list[str]:
        """All values of ``name``; list-grammar headers are split at top-level commas."""
        key = _KEYS.get(name) or key_of(name)
        lines = self._lines_of(key)
        if not lines:
            return []
        values = [_value(line) for line in lines]
        if key not in LIST_HEADERS:
            return values
        return [item for value in values for item in split_commas(value) if item]

    def has(self, name: str) -> bool:
        return (_KEYS.get(name) or key_of(name)) in self._names

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(name, value) per header line, in order; known names in canonical spelling."""
        result = []
        for key, line in zip(self._names, self._lines):
            name = CANONICAL.get(key) or line[: line.index(":")].strip()
            result.append((name, _value(line)))
        return result

    def _lines_of(self, key: str) -> list[str]:
        names = self._names
        count = names.count(key)
        if count < 2:  # the usual case: no scan in Python
            return [self._lines[names.index(key)]] if count else []
        return [line for k, line in zip(names, self._lines) if k == key]

    # ----------------------------------------------------------------- typed views
    @view("call-id")
    def call_id(self) -> str:
        value = self.get("call-id") or ""
        if not _CALL_ID.match(value):
            raise bad("Call-ID", f"malformed value {value[:60]!r}")
        return value

    @view("cseq")
    def cseq(self) -> CSeq:
        return parse_cseq(self.get("cseq") or "")

    @view("from")
    def from_(self) -> NameAddr:
        return parse_name_addr(self._single("from"), "From")

    @view("to")
    def to(self) -> NameAddr:
        return parse_name_addr(self._single("to"), "To")

    @property
    def from_tag(self) -> str | None:
        return self.from_.tag

    @property
    def to_tag(self) -> str | None:
        return self.to.tag

    def _single(self, key: str) -> str:
        """Value of the first line of a mandatory header (by key); 400 when missing."""
        names = self._names
        if key not in names:
            raise SipParseError(400, f"Missing {CANONICAL.get(key, key)} header")
        return _value(self._lines[names.index(key)])

    @property
    def vias(self) -> list[Via]:
        return list(self._vias)

    @view("via")
    def _vias(self) -> list[Via]:
        lines = self._lines_of("via")
        if not lines:
            return []
        if len(lines) == 1 and "," not in lines[0]:  # one value: the top Via, parsed already
            return [self.via]
        vias = parse_via_list(_value(lines[0]), self.via)
        for line in lines[1:]:
            vias += parse_via_list(_value(line))
        return vias

    @view("via@top")
    def via(self) -> Via:
        """Top Via value."""
        return _top_via(self._single("via"))

    @view("max-forwards")
    def max_forwards(self) -> int | None:
        value = self.get("max-forwards")
        if value is None:
            return None
        if value.isdigit() and value.isascii() and len(value.lstrip("0")) <= 3 \
                and (number := int(value)) <= 255:
            return number
        raise bad("Max-Forwards", f"not a number in 0..255: {value[:20]!r}")

    @property
    def content_length(self) -> int:
        """Content-Length as written, or the body size when the header is missing."""
        value = self.get("content-length")
        return len(self._body) if value is None else parse_content_length(value)

    @property
    def body(self) -> bytes:
        return self._body

    @property
    def content_type(self) -> str | None:
        return self.get("content-type")

    @property
    def routes(self) -> list[NameAddr]:
        return list(self._routes)

    @property
    def record_routes(self) -> list[NameAddr]:
        return list(self._record_routes)

    @view("route")
    def _routes(self) -> list[NameAddr]:
        return self._name_addrs("route", "Route")

    @view("record-route")
    def _record_routes(self) -> list[NameAddr]:
        return self._name_addrs("record-route", "Record-Route")

    def _name_addrs(self, key: str, what: str) -> list[NameAddr]:
        lines = self._lines_of(key)
        if len(lines) < 2:  # the usual case: no nested loop
            return parse_name_addr_list(_value(lines[0]), what) if lines else []
        return [na for line in lines for na in parse_name_addr_list(_value(line), what)]

    @property
    def contacts(self) -> list[NameAddr] | Literal["*"]:
        contacts = self._contacts
        return contacts if contacts == "*" else list(contacts)

    @view("contact")
    def _contacts(self) -> list[NameAddr] | Literal["*"]:
        lines = self._lines_of("contact")
        if len(lines) == 1 and _value(lines[0]) == "*":
            return "*"
        return self._name_addrs("contact", "Contact")

    @view("expires")
    def expires(self) -> int | None:
        value = self.get("expires")
        if value is None:
            return None
        if not value.isdigit() or not value.isascii():
            raise bad("Expires", f"not a number: {value[:20]!r}")
        return delta_seconds(value)

    @property
    def require(self) -> list[str]:
        return self.get_all("require")

    @property
    def proxy_require(self) -> list[str]:
        return self.get_all("proxy-require")

    @property
    def authorization(self) -> list[Credentials]:
        return list(self._authorization)

    @property
    def proxy_authorization(self) -> list[Credentials]:
        return list(self._proxy_authorization)

    @property
    def www_authenticate(self) -> list[Challenge]:
        return list(self._www_authenticate)

    @property
    def proxy_authenticate(self) -> list[Challenge]:
        return list(self._proxy_authenticate)

    @view("authorization")
    def _authorization(self) -> list[Credentials]:
        return self._auth("authorization", "Authorization", parse_credentials)

    @view("proxy-authorization")
    def _proxy_authorization(self) -> list[Credentials]:
        return self._auth("proxy-authorization", "Proxy-Authorization", parse_credentials)

    @view("www-authenticate")
    def _www_authenticate(self) -> list[Challenge]:
        return self._auth("www-authenticate", "WWW-Authenticate", parse_challenge)

    @view("proxy-authenticate")
    def _proxy_authenticate(self) -> list[Challenge]:
        return self._auth("proxy-authenticate", "Proxy-Authenticate", parse_challenge)

    def _auth(self, key: str, what: str, parse: Callable[[str, str], _T]) -> list[_T]:
        return [parse(_value(line), what) for line in self._lines_of(key)]

    def validate(self) -> None:
        """Parse every typed view this library knows; raises the first SipParseError.

        parse() checks only what the transaction layer needs; call this where a message is
        consumed rather than forwarded (a UAS, a registrar) or to be strict.
        """
        self.call_id, self.cseq, self.from_, self.to, self.vias, self.max_forwards
        self.content_length, self.routes, self.record_routes, self.contacts, self.expires
        self.authorization, self.proxy_authorization, self.www_authenticate, self.proxy_authenticate

    # ----------------------------------------------------------------- editing
    def _touch(self, key: str) -> None:
        self._raw = None
        cache = self._cache
        cache.pop(key, None)
        if key == "via":
            cache.pop("via@top", None)

    def prepend_via(self, value: str) -> None:
        """Insert ``value`` as a new top Via header line."""
        self.prepend_header("Via", value)

    def pop_via(self) -> str:
        """Remove the top Via value (also from a comma-joined line) and return it."""
        return self._pop_first_value("via", "Via")

    def copy(self) -> Message:
        raise NotImplementedError  # Request and Response copy their start line too

    def bytes_without_top_via(self) -> bytes:
        """The message as the next hop up gets it (a relayed reply): our Via removed, this
        message left as it is (a transaction may keep it to replay)."""
        relayed = self.copy()
        relayed.pop_via()
        return relayed.to_bytes()

    def pop_route(self) -> NameAddr | None:
        """Remove the first Route value and return it parsed (None when there is none)."""
        if "route" not in self._names:
            return None
        return parse_name_addr(self._pop_first_value("route", "Route"), "Route")

    def _pop_first_value(self, key: str, what: str) -> str:
        names = self._names
        try:
            i = names.index(key)
        except ValueError:
            raise SipParseError(400, f"Missing {what} header") from None
        line = self._lines[i]
        colon = line.index(":")
        raw = line[colon + 1:]
        comma = first_comma(raw)
        self._touch(key)
        if comma < 0:
            del self._lines[i], names[i]
            return _value(line)
        # keep the rest of the line byte-identical, only the popped value goes away
        self._lines[i] = line[: colon + 1] + " " + raw[comma + 1:].lstrip(" \t\r\n")
        value = raw[:comma]
        return unfold(value).strip() if "\n" in value else value.strip()

    def set_max_forwards(self, n: int) -> None:
        """Replace Max-Forwards (or add it when missing)."""
        if not 0 <= n <= 255:
            raise ValueError(f"Max-Forwards must be in 0..255, got {n}")
        self._set_line("max-forwards", f"Max-Forwards: {n}")
        self._cache["max-forwards"] = n

    def prepend_header(self, name: str, value: str) -> None:
        """Insert before the first line of that header (at the top when there is none)."""
        key, line = _new_line(name, value)
        names = self._names
        i = names.index(key) if key in names else 0  # not try/except: raising costs more
        names.insert(i, key)
        self._lines.insert(i, line)
        self._touch(key)

    def append_header(self, name: str, value: str) -> None:
        """Add a header line after the last one."""
        key, line = _new_line(name, value)
        self._names.append(key)
        self._lines.append(line)
        self._touch(key)

    def set_header(self, name: str, value: str) -> None:
        """Replace all lines of ``name`` by one line (in place of the first), or add it."""
        self._set_line(*_new_line(name, value))

    def _set_line(self, key: str, line: str) -> None:
        names = self._names
        if key in names:
            i = names.index(key)
            self._lines[i] = line
            if names.count(key) > 1:
                self._remove(key, keep=i)
        else:
            names.append(key)
            self._lines.append(line)
        self._touch(key)

    def remove_header(self, name: str) -> int:
        """Remove all lines of ``name``; returns how many were removed."""
        key = _KEYS.get(name) or key_of(name)
        removed = self._remove(key, keep=-1)
        if removed:
            self._touch(key)
        return removed

    def _remove(self, key: str, keep: int) -> int:
        names, lines = self._names, self._lines
        kept = [(k, line) for i, (k, line) in enumerate(zip(names, lines)) if k != key or i == keep]
        removed = len(names) - len(kept)
        names[:] = [k for k, _ in kept]
        lines[:] = [line for _, line in kept]
        return removed

    def set_body(self, body: bytes, content_type: str | None = None) -> None:
        """Replace the body; Content-Length follows, Content-Type when given."""
        self._body = bytes(body)
        self.set_header("Content-Length", str(len(body)))
        if content_type is not None:
            self.set_header("Content-Type", content_type)

    def ensure_content_length(self) -> None:
        """Add Content-Length when missing (RFC 2543 senders omit it; streams need it)."""
        if "content-length" not in self._names:
            self.append_header("Content-Length", str(len(self._body)))

    def to_bytes(self) -> bytes:
        raw = self._raw
        if raw is None:
            head = f"{self._start}\r\n{_CRLF.join(self._lines)}\r\n\r\n"  # one copy, not four
            raw = self._raw = head.encode("utf-8", WIRE_ERRORS) + self._body
        return raw

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def _copy_base(self, new: Message) -> None:
        new._start = self._start
        new._lines = self._lines[:]
        new._names = self._names[:]
        new._body = self._body
        new._raw = self._raw
        new._cache = self._cache.copy()


class Request(Message):
    """A SIP request: ``method``, ``ruri`` (text), ``uri`` (parsed), ``version``."""

    __slots__ = ("method", "ruri", "version")
    is_request = True

    def __init__(self, method: str, ruri: str, version: str = "SIP/2.0") -> None:
        self.method = method
        self.ruri = ruri
        self.version = version
        self._start = f"{method} {ruri} {version}"
        self._lines = []
        self._names = []
        self._body = b""
        self._raw = None
        self._cache = {}

    @view("@ruri")
    def uri(self) -> Uri:
        try:
            uri = parse_uri(self.ruri)
        except SipParseError as err:
            raise bad("Request-URI", err.reason.removeprefix("Bad URI: ")) from None
        if isinstance(uri, SipUri) and uri.headers:
            raise bad("Request-URI", "headers are not allowed in a Request-URI")
        return uri

    def set_ruri(self, uri: str) -> None:
        """Rewrite the Request-URI."""
        if not _RURI.match(uri):
            raise ValueError(f"not a Request-URI: {uri[:60]!r}")
        self.ruri = uri
        self._start = f"{self.method} {uri} {self.version}"
        self._raw = None
        self._cache.pop("@ruri", None)

    def validate(self) -> None:
        self.uri
        super().validate()

    def copy(self) -> Request:
        new = Request.__new__(Request)
        new.method = self.method
        new.ruri = self.ruri
        new.version = self.version
        self._copy_base(new)
        return new

    def reduced(self, keys: Collection[str]) -> Request:
        """A copy keeping only the header lines of ``keys`` (lower-case names), no body and
        nothing parsed: what a finished transaction keeps of its request, at a fraction of
        the memory (its lines are shared, not copied)."""
        new = Request(self.method, self.ruri, self.version)
        names = self._names
        for index, name in enumerate(names):
            if name in keys:
                new._names.append(name)
                new._lines.append(self._lines[index])
        return new

    @classmethod
    def from_own_bytes(cls, data: bytes) -> Request:
        """The request whose ``to_bytes()`` returned ``data``, indexed again without parse()'s
        checks (they passed when it arrived, and edits keep them): how a request kept as its
        bytes (under a third of what it holds parsed) is read when needed again."""
        end = data.index(b"\r\n\r\n")
        head = data[:end].decode("utf-8", WIRE_ERRORS)
        start, _, section = head.partition("\r\n")
        new = cls.__new__(cls)
        method, new.ruri, new.version = start.split(" ")
        new.method = _METHODS.get(method, method)
        lines = section.split("\r\n")
        get = LINE_KEYS.get
        names = [get(line[: line.find(":") + 1]) for line in lines]
        if None in names:  # a folded line, or a name seen when LINE_KEYS was full
            if "\r\n " in section or "\r\n\t" in section:
                lines = _join_folded(lines)
            names = [get(line[: line.find(":") + 1]) or line_key(line) for line in lines]
        new._start = start
        new._lines = lines
        new._names = names  # type: ignore[assignment]
        new._body = data[end + 4:]
        new._raw = data
        new._cache = {}
        return new

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.ruri}>"


class Response(Message):
    """A SIP response: ``status``, ``reason``, ``version``."""

    __slots__ = ("status", "reason", "version")
    is_request = False

    def __init__(self, status: int, reason: str, version: str = "SIP/2.0") -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self._start = f"{version} {status} {reason}"
        self._lines = []
        self._names = []
        self._body = b""
        self._raw = None
        self._cache = {}

    def set_status(self, status: int, reason: str | None = None) -> None:
        from .reasons import REASONS

        if not 100 <= status <= 699:
            raise ValueError(f"status must be in 100..699, got {status}")
        if reason is None:
            reason = REASONS.get(status, "Unknown")
        if _CR_LF.search(reason):
            raise ValueError("reason phrase contains CR or LF")
        self.status = status
        self.reason = reason
        self._start = f"{self.version} {status} {reason}"
        self._raw = None

    def copy(self) -> Response:
        new = Response.__new__(Response)
        new.status = self.status
        new.reason = self.reason
        new.version = self.version
        self._copy_base(new)
        return new

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


# --------------------------------------------------------------------- value parsers
def parse_cseq(value: str) -> CSeq:
    m = _CSEQ.match(value)
    if m is None:
        raise bad("CSeq", f"malformed value {value[:40]!r}")
    number = m.group(1)
    if len(number) > 10 or int(number) >= 2**31:
        raise bad("CSeq", "number out of range")
    return CSeq(int(number), m.group(2))


def parse_content_length(value: str) -> int:
    m = _DIGITS.match(value)
    if m is None or len(m.group(1)) > 10:
        raise bad("Content-Length", f"not a number: {value[:20]!r}")
    return int(m.group(1))


# --------------------------------------------------------------------- parse()
def parse(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE,
          limits: HeaderLimits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one datagram (or one framed stream message) into a Request or Response.

    Checks eagerly what a transaction layer relies on (see the package docstring) and the
    header ``limits``; the rest is parsed when first read. Raises SipParseError (or its
    SipLimitError) and nothing else.
    """
    try:
        return _parse(data, max_size, limits)
    except SipParseError:
        raise
    except Exception as exc:  # a parser bug must still surface as a 400, never crash
        raise SipParseError(400, f"Malformed message (internal {type(exc).__name__})") from exc


def _parse(data: bytes, max_size: int, limits: HeaderLimits) -> Request | Response:
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size > max_size:
        raise SipLimitError(513, f"Message Too Large: {size} bytes, limit {max_size}")
    start = 0
    if data[:1] in (b"\r", b"\n"):  # CRLFs before the start line are keep-alives (§7.5)
        start = size - len(data.lstrip(b"\r\n"))
        if start == size:
            raise SipParseError(400, "Empty message")
    head_end = data.find(b"\r\n\r\n", start)
    body_start = head_end + 4
    no_empty_line = head_end < 0
    if no_empty_line:
        # The header section ends with the datagram: a message without a body, if it says
        # so (no Content-Length or 0); the empty line is written back when it is forwarded.
        head_end = size - 2 if data.endswith(b"\r\n") else size
        body_start = size
    head = data[start:head_end].decode("utf-8", WIRE_ERRORS)
    lines = head.split("\r\n")
    breaks = len(lines) - 1
    if head.count("\n") != breaks or head.count("\r") != breaks:
        raise SipParseError(400, "Malformed message: bare CR or LF in the header section")

    msg, start_error = _start_line(lines[0])
    del lines[0]
    get = LINE_KEYS.get
    names = [get(line[: line.find(":") + 1]) for line in lines]
    if None in names:  # a name seen for the first time, a folded line, or garbage
        try:
            if "\r\n " in head or "\r\n\t" in head:
                lines = _join_folded(lines)
                names = [get(line[: line.find(":") + 1]) for line in lines]
            names = [key or line_key(line) for key, line in zip(names, lines)]
        except SipParseError as err:
            err.message = msg
            _index_salvageable(msg, lines)
            raise
    msg._lines = lines
    msg._names = names  # type: ignore[assignment]
    if start_error is not None:
        start_error.message = msg
        raise start_error
    if len(names) + head.count(",") > limits.bound:
        limits.check(msg, head)

    present = set(names)
    if len(present) != len(names):  # some name repeats: is it one that must not?
        for key in SINGLE_VALUED:
            if names.count(key) > 1:
                raise SipParseError(400, f"Duplicate {CANONICAL[key]} header", msg)
    if not _MANDATORY <= present:
        for key in MANDATORY:
            if key not in present:
                raise SipParseError(400, f"Missing {CANONICAL[key]} header", msg)

    try:
        if no_empty_line and "content-length" in names \
                and _value(lines[names.index("content-length")]) != "0":
            raise SipParseError(400, "Malformed message: no empty line after the header "
                                     "fields, and Content-Length is not 0")
        if "content-length" in names:
            value = _value(lines[names.index("content-length")])
            length = int(value) if value.isdigit() and len(value) < 10 and value.isascii() else parse_content_length(value)
            end = body_start + length
            if end > size:
                raise bad("Content-Length", f"{length} is larger than the body ({size - body_start} bytes)")
        else:
            end = size
        cseq = parse_cseq(_value(lines[names.index("cseq")]))
        if isinstance(msg, Request) and cseq.method != msg.method:
            raise bad("CSeq", f"method {cseq.method} does not match the request method")
        # top Via: branch and sent-by are what transactions match on
        msg._cache = {"cseq": cseq, "via@top": _top_via(_value(lines[names.index("via")]))}
    except SipParseError as err:
        err.message = msg
        raise
    msg._body = data[body_start:end]
    if no_empty_line:
        msg._raw = None  # to_bytes() writes the message with its empty line
    else:
        msg._raw = data if start == 0 and end == size else data[start:end]
    return msg


def _start_line(line: str) -> tuple[Request | Response, SipParseError | None]:
    """The message object for a start line, plus the error to raise once headers are indexed
    (so the error can carry the message for a reply)."""
    error: SipParseError | None = None
    msg: Request | Response
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not (len(code) == 3 and code.isdigit() and code.isascii() and 100 <= int(code) <= 699):
            error = SipParseError(400, f"Bad status line: status code {code[:20]!r}")
            code = "500"
        msg = Response.__new__(Response)
        msg.status, msg.reason, msg.version = int(code), reason, version
    elif (plain := _REQUEST_LINE.match(line)) is not None:  # the usual shape, one match
        msg = Request.__new__(Request)
        method, msg.ruri = plain.groups()
        msg.method = _METHODS.get(method, method)
        version = msg.version = "SIP/2.0"
    else:
        parts = line.split(" ")
        if len(parts) != 3:
            error = SipParseError(400, "Bad request line: expected 'Method SP Request-URI SP SIP-Version'")
            parts = (parts + ["", "", ""])[:3]
        method, ruri, version = parts
        if error is None:
            if not _TOKEN.match(method):
                error = SipParseError(400, f"Bad request line: method {method[:40]!r}")
            elif not _RURI.match(ruri):
                error = bad("Request-URI", f"malformed {ruri[:60]!r}")
        msg = Request.__new__(Request)
        msg.method, msg.ruri, msg.version = method, ruri, version
    if error is None and version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if _VERSION.match(version):
            error = SipParseError(505, f"Version Not Supported: {version[:20]}")
        else:
            error = SipParseError(400, f"Bad start line: version {version[:20]!r}")
    msg._start = line
    msg._cache = {}
    msg._body = b""
    msg._raw = None
    return msg, error


def _index_salvageable(msg: Message, lines: list[str]) -> None:
    """Index the well-formed header lines only, so a reply can still copy Via, From, ..."""
    msg._lines, msg._names = [], []
    for line in lines:
        try:
            key = line_key(line)
        except SipParseError:
            continue
        msg._lines.append(line)
        msg._names.append(key)


def _top_via(value: str) -> Via:
    if "," not in value:
        return Via(value)
    comma = first_comma(value)
    return Via(value[:comma].rstrip() if comma >= 0 else value)


def _join_folded(lines: list[str]) -> list[str]:
    """Merge continuation lines into the header line they continue (inner CRLFs kept)."""
    joined: list[list[str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not joined:
                raise SipParseError(400, "Malformed message: continuation line after the start line")
            joined[-1].append(line)
        else:
            joined.append([line])
    return ["\r\n".join(parts) for parts in joined]
