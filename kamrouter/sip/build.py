"""Building messages: local responses, UAC requests, CANCEL and ACK (RFC 3261 §8, §9, §17)."""
from __future__ import annotations

from collections.abc import Iterable

from .errors import SipParseError
from .ids import generate_branch, generate_call_id, generate_tag
from .message import Message, Request, Response, _value
from .params import parse_params
from .reasons import REASONS

# Responses that create a dialog carry the request's Record-Route (§12.1.1).
_DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


def _copy_lines(src: Message, dst: Message, keys: Iterable[str]) -> None:
    """Copy header lines of ``keys`` from src to dst, raw (they may be unparseable)."""
    for key in keys:
        lines = src._lines_of(key)
        dst._names += [key] * len(lines)
        dst._lines += lines


def _add_line(msg: Message, key: str, line: str) -> None:
    """Append a line we wrote from parsed values (no CR/LF to check) to a new message."""
    msg._names.append(key)
    msg._lines.append(line)


def _add(msg: Message, headers: Iterable[tuple[str, str]], body: bytes) -> None:
    for name, value in headers:
        msg.append_header(name, value)
    _add_line(msg, "content-length", f"Content-Length: {len(body)}")
    msg._body = bytes(body)


def _has_tag(to_value: str) -> bool:
    """Does a To value carry a tag? Tolerant: the To line may be malformed (salvaged 400)."""
    gt = to_value.rfind(">")
    tail = to_value[gt + 1:] if gt >= 0 else to_value
    semi = tail.find(";")
    if semi < 0:
        return False
    try:
        return "tag" in parse_params(tail[semi:], "To")
    except SipParseError:
        return ";tag=" in tail.replace(" ", "").lower()


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """Response to ``request`` per RFC 3261 §8.2.6: Via (all values), From, To, Call-ID and
    CSeq copied; a To tag added for status > 100 when To has none (``to_tag`` or a random one).

    Works on a salvaged request (``SipParseError.message``): header lines are copied raw.
    """
    resp = Response(status, reason if reason is not None else REASONS.get(status, "Unknown"))
    if not 100 <= status <= 699:
        raise ValueError(f"status must be in 100..699, got {status}")
    _copy_lines(request, resp, ("via", "from"))
    to_lines = request._lines_of("to")
    if to_lines:
        line = to_lines[0]
        if status > 100 and not _has_tag(value := _value(line)):
            line = f"To: {value};tag={to_tag or generate_tag()}"
        _add_line(resp, "to", line)
    _copy_lines(request, resp, ("call-id", "cseq"))
    if 100 < status < 300 and request.method in _DIALOG_METHODS:
        _copy_lines(request, resp, ("record-route",))
    _add(resp, headers, body)
    return resp


def make_request(
    method: str,
    ruri: str,
    *,
    from_uri: str,
    to_uri: str,
    via: str,
    call_id: str | None = None,
    cseq: int = 1,
    from_tag: str | None = None,
    max_forwards: int = 70,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Request:
    """A new UAC request (e.g. an OPTIONS probe). ``via`` is the full Via value; a branch
    is generated when it has none."""
    req = Request(method, ruri)
    if "branch=" not in via:
        via = f"{via};branch={generate_branch()}"
    req.append_header("Via", via)
    req.append_header("Max-Forwards", str(max_forwards))
    req.append_header("From", f"<{from_uri}>;tag={from_tag or generate_tag()}")
    req.append_header("To", f"<{to_uri}>")
    req.append_header("Call-ID", call_id or generate_call_id())
    req.append_header("CSeq", f"{cseq} {method}")
    if contact is not None:
        req.append_header("Contact", f"<{contact}>")
    _add(req, headers, body)
    return req


def make_cancel(request: Request) -> Request:
    """CANCEL for an INVITE as sent on a branch (RFC 3261 §9.1): same Request-URI, Call-ID,
    From, To and CSeq number; only the top Via; the same Route values."""
    return _same_hop("CANCEL", request, request)


def make_ack(request: Request, response: Response) -> Request:
    """ACK for a non-2xx final response (RFC 3261 §17.1.1.3): Request-URI, Call-ID, From and
    top Via of the request; To of the response; CSeq number with method ACK; the request's
    Route values."""
    return _same_hop("ACK", request, response)


def _same_hop(method: str, request: Request, to_source: Message) -> Request:
    """A request for the hop ``request`` was sent on: its Request-URI, top Via, Max-Forwards,
    From, Call-ID, CSeq number and Route values; To copied from ``to_source``."""
    new = Request(method, request.ruri, request.version)
    _add_line(new, "via", f"Via: {request.via}")
    max_forwards = request.max_forwards
    _add_line(new, "max-forwards", f"Max-Forwards: {70 if max_forwards is None else max_forwards}")
    _copy_lines(request, new, ("from",))
    _copy_lines(to_source, new, ("to",))
    _copy_lines(request, new, ("call-id",))
    _add_line(new, "cseq", f"CSeq: {request.cseq.number} {method}")
    _copy_lines(request, new, ("route",))
    _add(new, (), b"")
    return new
