"""Checks a proxy makes on a well-formed message before routing it (RFC 3261 §16.3,
RFC 4475 §3.3). The parser accepts these messages; the proxy decides what to answer."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .errors import SipParseError
from .message import Message, Request
from .uri import AbsoluteUri
from .via import Via

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
ROUTABLE_SCHEMES = frozenset({"sip", "sips", "tel"})


def sanity_check(
    msg: Message,
    *,
    supported: Iterable[str] = (),
    check_max_forwards: bool = True,
) -> SipParseError | None:
    """The first problem a proxy must answer (requests) or drop (responses) for, or None.

    Requests: Request-URI scheme sip/sips/tel (416) and syntax (400); Max-Forwards 0 (483;
    the proxy may still answer OPTIONS itself); Proxy-Require options not in ``supported``
    (420, the error's ``headers`` carry the Unsupported line); From/To/Call-ID/CSeq and all
    Via values well formed (400). Responses: every Via well formed and the Via the
    response would be sent to not a broadcast address (drop it).
    """
    try:
        if isinstance(msg, Request):
            return _check_request(msg, supported, check_max_forwards)
        return _check_response(msg)
    except SipParseError as err:
        return err


def _check_request(req: Request, supported: Iterable[str], check_max_forwards: bool) -> SipParseError | None:
    uri = req.uri
    if type(uri) is AbsoluteUri or uri.scheme not in ROUTABLE_SCHEMES:
        return SipParseError(416, f"Unsupported URI Scheme: {uri.scheme}", req)
    if req.version.upper() != "SIP/2.0":
        return SipParseError(505, f"Version Not Supported: {req.version}", req)
    if req.cseq.method != req.method:
        return SipParseError(400, "Bad CSeq: method does not match the request method", req)
    req.call_id, req.from_, req.to, req.vias  # noqa: B018 - parse errors are the answer
    if check_max_forwards and req.max_forwards == 0:
        return SipParseError(483, "Too Many Hops", req)
    if not req.has("proxy-require"):
        return None
    known = {option.lower() for option in supported}
    unknown = [opt for opt in req.proxy_require if opt.lower() not in known]
    if unknown:
        listed = ", ".join(unknown)
        return SipParseError(420, f"Bad Extension: {listed}", req, [("Unsupported", listed)])
    return None


def _check_response(resp: Message) -> SipParseError | None:
    resp.call_id, resp.from_, resp.to
    vias = resp.vias
    if len(vias) > 1 and is_broadcast_via(vias[1]):
        return SipParseError(400, f"Bad Via: response would go to broadcast address {vias[1].sent_by}", resp)
    return None


def is_broadcast_via(via: Via) -> bool:
    """Would a response to this Via go to the limited broadcast address (RFC 4475 §3.3.10)?

    Looks at the address §18.2.2 would send to: maddr, else received, else sent-by.
    Multicast maddr is legitimate in RFC 3261 and left to the transport.
    """
    for host in (via.maddr, via.received, via.host):
        if not host:
            continue
        try:
            addr = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False  # a host name: resolved (and checked) by the transport
        return addr == _LIMITED_BROADCAST
    return False
