"""make_response / make_request / make_cancel / make_ack and the id generators."""
from __future__ import annotations

from kamrouter.sip import (
    MAGIC_COOKIE,
    generate_branch,
    generate_call_id,
    generate_tag,
    make_ack,
    make_cancel,
    make_request,
    make_response,
    parse,
)

from .messages import INVITE, RESPONSE_180

MULTI_VIA_INVITE = INVITE.replace(
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n",
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKproxy1, SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKproxy2\r\n"
    b"v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n",
)


def test_make_response_copies_dialog_headers_and_adds_to_tag() -> None:
    req = parse(MULTI_VIA_INVITE)
    resp = parse(make_response(req, 486, to_tag="xyz").to_bytes())
    assert (resp.status, resp.reason) == (486, "Busy Here")
    assert [v.branch for v in resp.vias] == ["z9hG4bKproxy1", "z9hG4bKproxy2", "z9hG4bK776asdhds"]
    assert str(resp.from_) == str(req.from_)
    assert resp.to_tag == "xyz" and resp.to.uri == req.to.uri
    assert resp.call_id == req.call_id
    assert resp.cseq == req.cseq
    assert resp.content_length == 0 and resp.body == b""
    assert not resp.has("Route") and not resp.has("Contact")


def test_make_response_tags() -> None:
    req = parse(INVITE)
    assert parse(make_response(req, 100).to_bytes()).to_tag is None
    generated = parse(make_response(req, 404).to_bytes()).to_tag
    assert generated and len(generated) >= 16
    tagged = parse(INVITE.replace(b"To: Bob <sip:bob@example.com>", b"To: Bob <sip:bob@example.com>;tag=t1"))
    assert parse(make_response(tagged, 200).to_bytes()).to_tag == "t1"


def test_make_response_extra_headers_body_and_record_route() -> None:
    req = parse(INVITE.replace(b"Contact:", b"Record-Route: <sip:rr.example.net;lr>\r\nContact:"))
    resp = parse(make_response(req, 200, "Fine", headers=[("Contact", "<sip:bob@192.0.2.20>")], body=b"hello").to_bytes())
    assert resp.reason == "Fine"
    assert [str(r.uri) for r in resp.record_routes] == ["sip:rr.example.net;lr"]
    assert str(resp.contacts[0].uri) == "sip:bob@192.0.2.20"
    assert resp.body == b"hello" and resp.content_length == 5
    assert not parse(make_response(req, 404).to_bytes()).has("Record-Route")


def test_make_response_from_salvaged_request() -> None:
    bad = INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 99999999999 INVITE")
    try:
        parse(bad)
    except Exception as err:  # SipParseError carrying the salvaged request
        salvaged = err.message  # type: ignore[attr-defined]
        assert err.status == 400  # type: ignore[attr-defined]
    resp = make_response(salvaged, 400, "Bad CSeq: number out of range")
    assert b"CSeq: 99999999999 INVITE\r\n" in resp.to_bytes()
    assert resp.to_bytes().startswith(b"SIP/2.0 400 Bad CSeq: number out of range\r\n")


def test_make_cancel_rfc3261_9_1() -> None:
    sent = parse(MULTI_VIA_INVITE)
    cancel = parse(make_cancel(sent).to_bytes())
    assert cancel.method == "CANCEL" and cancel.ruri == sent.ruri
    assert [str(v) for v in cancel.vias] == [str(sent.via)]
    assert (cancel.cseq.number, cancel.cseq.method) == (sent.cseq.number, "CANCEL")
    assert str(cancel.from_) == str(sent.from_) and str(cancel.to) == str(sent.to)
    assert cancel.call_id == sent.call_id
    assert [str(r) for r in cancel.routes] == [str(r) for r in sent.routes]
    assert cancel.body == b"" and cancel.max_forwards == 70


def test_make_ack_rfc3261_17_1_1_3() -> None:
    sent = parse(MULTI_VIA_INVITE)
    final = parse(RESPONSE_180.replace(b"180 Ringing", b"486 Busy Here"))
    ack = parse(make_ack(sent, final).to_bytes())
    assert ack.method == "ACK" and ack.ruri == sent.ruri
    assert [str(v) for v in ack.vias] == [str(sent.via)]
    assert ack.to_tag == "a6c85cf"
    assert ack.from_tag == sent.from_tag and ack.call_id == sent.call_id
    assert (ack.cseq.number, ack.cseq.method) == (sent.cseq.number, "ACK")
    assert [str(r) for r in ack.routes] == [str(r) for r in sent.routes]


def test_make_request_uac() -> None:
    req = parse(
        make_request(
            "OPTIONS", "sip:gw.example.net", from_uri="sip:probe@router.example.net",
            to_uri="sip:gw.example.net", via="SIP/2.0/UDP 192.0.2.1:5060",
        ).to_bytes()
    )
    assert req.method == "OPTIONS" and req.cseq.method == "OPTIONS" and req.cseq.number == 1
    assert req.via.is_rfc3261 and req.from_tag and req.to_tag is None
    assert req.max_forwards == 70 and req.content_length == 0


def test_generated_ids_are_distinct_and_well_formed() -> None:
    branches = {generate_branch() for _ in range(100)}
    assert len(branches) == 100 and all(b.startswith(MAGIC_COOKIE) and len(b) > 20 for b in branches)
    assert len({generate_tag() for _ in range(100)}) == 100
    assert generate_call_id("host.example").endswith("@host.example")
