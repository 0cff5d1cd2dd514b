"""Micro-benchmark of kamrouter.sip: messages per second on one core.

(a) parse of a typical INVITE and of a 200 OK;
(b) the forwarding path: parse + Max-Forwards - 1 + prepend Via + add Record-Route + to_bytes;
(c) the proxy paths: what the stateful router reads and edits for an INVITE, an in-dialog
    BYE and a reply, and the messages tm builds (100 Trying, ACK, CANCEL).

Run: .venv/bin/python benchmarks/parse.py   (figures go into README.md "## Performance")
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kamrouter.sip import make_ack, make_cancel, make_response, parse, sanity_check  # noqa: E402
from kamrouter.sip import uri as uri_module  # noqa: E402
from kamrouter.sip.message import _top_via, parse_cseq  # noqa: E402

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@example.com>\r\n"
    b"From: Alice <sip:alice@example.org>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.org\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: bench/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

OK200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds8;received=192.0.2.1\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport=5060\r\n"
    b"Record-Route: <sip:192.0.2.1;lr>\r\n"
    b"To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n"
    b"From: Alice <sip:alice@example.org>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.org\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.20:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

BYE = (
    b"BYE sip:bob@192.0.2.20:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhdt;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:192.0.2.1;lr>\r\n"
    b"To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n"
    b"From: Alice <sip:alice@example.org>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.org\r\n"
    b"CSeq: 314160 BYE\r\n"
    b"Content-Length: 0\r\n\r\n"
)

OUR_VIA = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK4b43c2ff8.0"
OUR_RR = "<sip:192.0.2.1;lr>"


def forward(data: bytes) -> bytes:
    msg = parse(data)
    msg.set_max_forwards(msg.max_forwards - 1)
    msg.prepend_via(OUR_VIA)
    msg.prepend_header("Record-Route", OUR_RR)
    return msg.to_bytes()


def forward_reply(data: bytes) -> bytes:
    msg = parse(data)
    msg.pop_via()
    return msg.to_bytes()


def proxy_request(data: bytes) -> bytes:
    """What the stateful router does with a request: the default script's sanity check,
    dialog and route lookups, then a copy for the branch with our Max-Forwards, Record-Route
    and Via."""
    req = parse(data)
    if sanity_check(req, check_max_forwards=False) is not None:
        raise AssertionError("sample request fails the sanity check")
    req.to_tag, req.from_tag, req.call_id
    routes = req.routes
    max_forwards = req.max_forwards
    branch = req.copy()
    if routes:
        branch.pop_route()
    branch.set_max_forwards(max_forwards - 1)
    if req.to_tag is None:
        branch.prepend_header("Record-Route", OUR_RR)
    branch.prepend_via(OUR_VIA)
    return branch.to_bytes()


def proxy_request_new_uris(data: bytes) -> bytes:
    """As proxy_request, with every URI parsed anew (as for the many distinct users and
    Contacts of a large deployment, which the bounded URI cache does not hold)."""
    uri_module._CACHE.clear()
    return proxy_request(data)


def proxy_reply(data: bytes) -> bytes:
    """A reply through the router: transaction match on the top branch and CSeq, then a copy
    without our Via."""
    reply = parse(data)
    reply.via.branch, reply.cseq
    out = reply.copy()
    out.pop_via()
    return out.to_bytes()


def parse_and_sanity(data: bytes) -> object:
    msg = parse(data)
    return sanity_check(msg, check_max_forwards=False)


def trying(_: bytes) -> bytes:
    return make_response(PARSED_INVITE, 100).to_bytes()


def ack_and_cancel(_: bytes) -> tuple[bytes, bytes]:
    return make_ack(PARSED_INVITE, PARSED_486).to_bytes(), make_cancel(PARSED_INVITE).to_bytes()


def parse_and_validate(data: bytes) -> object:
    msg = parse(data)
    msg.validate()
    return msg


def eager_checks(_: bytes) -> object:
    """What parse() checks beyond splitting and indexing: top Via, CSeq, Content-Length."""
    return _top_via(TOP_VIA), parse_cseq(CSEQ), int(CONTENT_LENGTH)


TOP_VIA = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport"
CSEQ = "314159 INVITE"
CONTENT_LENGTH = str(len(SDP))
PARSED_INVITE = parse(INVITE)
PARSED_486 = parse(OK200.replace(b"200 OK", b"486 Busy Here"))


def rate(fn: Callable[[bytes], object], data: bytes, seconds: float = 0.3, runs: int = 7) -> float:
    """Best of ``runs`` runs of ``seconds`` each, in calls per second (the best run is the
    one least disturbed by other processes on the machine)."""
    best = 0.0
    for _ in range(runs):
        n = 0
        batch = 500
        start = time.perf_counter()
        while True:
            for _ in range(batch):
                fn(data)
            n += batch
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        best = max(best, n / elapsed)
    return best


def main() -> None:
    figures = [
        ("parse INVITE", rate(parse, INVITE)),
        ("parse 200 OK", rate(parse, OK200)),
        ("forward INVITE (parse, MF-1, +Via, +RR, to_bytes)", rate(forward, INVITE)),
        ("forward 200 OK (parse, pop Via, to_bytes)", rate(forward_reply, OK200)),
        ("parse + validate() every view, INVITE", rate(parse_and_validate, INVITE)),
        ("  eager checks inside parse (top Via, CSeq, C-L)", rate(eager_checks, INVITE)),
        ("parse + sanity_check, INVITE", rate(parse_and_sanity, INVITE)),
        ("proxy request path, INVITE", rate(proxy_request, INVITE)),
        ("  the same, URIs not in the URI cache", rate(proxy_request_new_uris, INVITE)),
        ("proxy request path, in-dialog BYE with Route", rate(proxy_request, BYE)),
        ("proxy reply path, 200 OK", rate(proxy_reply, OK200)),
        ("make_response 100 Trying (+ to_bytes)", rate(trying, INVITE)),
        ("make_ack + make_cancel (+ to_bytes)", rate(ack_and_cancel, INVITE)),
    ]
    print(f"Python {sys.version.split()[0]}, one core, best of 7 runs of 0.3 s")
    for label, value in figures:
        print(f"{label:52} {value:>10,.0f} /s  ({1e6 / value:5.1f} us)")


if __name__ == "__main__":
    main()
