"""Splice editing: untouched parts stay byte-identical."""
from __future__ import annotations

import pytest

from kamrouter.sip import Request, parse

from .messages import INVITE

VIA_LINE = b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"


def test_untouched_message_is_returned_as_received() -> None:
    assert parse(INVITE).to_bytes() is INVITE


def test_forwarding_edits_leave_other_bytes_identical() -> None:
    msg = parse(INVITE)
    msg.set_max_forwards(msg.max_forwards - 1)  # type: ignore[operator]
    msg.prepend_via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKnew")
    msg.prepend_header("Record-Route", "<sip:192.0.2.1;lr>")
    expected = (
        INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 69")
        .replace(VIA_LINE, b"Record-Route: <sip:192.0.2.1;lr>\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKnew\r\n" + VIA_LINE)
    )
    assert msg.to_bytes() == expected
    assert msg.max_forwards == 69 and msg.via.branch == "z9hG4bKnew"
    assert [str(r.uri) for r in msg.record_routes] == ["sip:192.0.2.1;lr"]


def test_prepend_record_route_goes_before_existing_ones() -> None:
    msg = parse(INVITE.replace(b"Contact:", b"Record-Route: <sip:old.example.net;lr>\r\nContact:"))
    msg.prepend_header("Record-Route", "<sip:new.example.net;lr>")
    data = msg.to_bytes()
    assert data.index(b"Record-Route: <sip:new") < data.index(b"Record-Route: <sip:old")
    assert data.index(b"CSeq: ") < data.index(b"Record-Route: <sip:new")  # in place, not at top
    assert [str(r.uri.host) for r in msg.record_routes] == ["new.example.net", "old.example.net"]  # type: ignore[union-attr]


def test_pop_via_from_comma_joined_line() -> None:
    data = INVITE.replace(VIA_LINE, b"Via: SIP/2.0/UDP a.example;branch=z9hG4bK1 ,  SIP/2.0/TCP b.example;branch=z9hG4bK2\r\n" + VIA_LINE)
    msg = parse(data)
    assert msg.pop_via() == "SIP/2.0/UDP a.example;branch=z9hG4bK1"
    assert msg.via.host == "b.example"
    assert msg.to_bytes() == data.replace(b"SIP/2.0/UDP a.example;branch=z9hG4bK1 ,  ", b"")
    assert msg.pop_via() == "SIP/2.0/TCP b.example;branch=z9hG4bK2"
    assert msg.to_bytes() == INVITE
    assert [v.branch for v in msg.vias] == ["z9hG4bK776asdhds"]


def test_pop_via_with_quoted_comma_in_param() -> None:
    data = INVITE.replace(VIA_LINE, b'Via: SIP/2.0/UDP a.example;x="1,2";branch=z9hG4bK1, SIP/2.0/UDP b.example\r\n' + VIA_LINE)
    msg = parse(data)
    assert msg.pop_via() == 'SIP/2.0/UDP a.example;x="1,2";branch=z9hG4bK1'
    assert msg.via.host == "b.example"


def test_pop_route() -> None:
    msg = parse(INVITE)
    first = msg.pop_route()
    assert first is not None and str(first.uri) == "sip:p1.example.net;lr"
    assert b"Route: <sip:p2.example.net;lr>\r\n" in msg.to_bytes()
    msg.pop_route()
    assert not msg.has("Route") and msg.pop_route() is None


def test_set_ruri_and_copy_are_independent() -> None:
    msg = parse(INVITE)
    branch = msg.copy()
    branch.set_ruri("sip:bob@192.0.2.20:5070;transport=tcp")
    branch.set_max_forwards(10)
    assert branch.uri.port == 5070 and branch.uri.transport == "tcp"  # type: ignore[union-attr]
    assert branch.to_bytes().startswith(b"INVITE sip:bob@192.0.2.20:5070;transport=tcp SIP/2.0\r\n")
    assert msg.to_bytes() is INVITE and msg.max_forwards == 70 and msg.ruri == "sip:bob@example.com"


def test_a_reduced_request_keeps_only_the_named_lines() -> None:
    msg = parse(INVITE)
    kept = msg.reduced({"via", "call-id", "cseq"})
    assert kept.method == "INVITE" and kept.ruri == msg.ruri
    assert kept.get("Call-ID") == msg.get("Call-ID") and kept.cseq == msg.cseq
    assert kept.get("Contact") is None and kept.body == b""
    assert kept.to_bytes().count(b"\r\n") == 1 + len(msg.vias) + 2 + 1
    assert msg.to_bytes() is INVITE  # the original is untouched


def test_a_request_comes_back_from_its_own_bytes_as_it_was() -> None:
    msg = parse(INVITE.replace(b"Contact:", b"Subject: folded\r\n\tover two\r\nm:")
                .replace(b"\r\n\r\n", b"\r\n\r\n\r\n", 1))  # a body starting with CRLF
    msg.set_max_forwards(69)
    msg.append_header("X-Edited", "yes")
    again = Request.from_own_bytes(msg.to_bytes())
    assert (again.method, again.ruri, again.version) == (msg.method, msg.ruri, msg.version)
    assert again._start == msg._start and again.body == msg.body
    assert again._lines == msg._lines and again._names == msg._names
    assert again.get("Subject") == "folded over two" and again.max_forwards == 69
    assert again.to_bytes() is msg.to_bytes(), "shares the bytes it came from"


def test_set_remove_append_header() -> None:
    msg = parse(INVITE.replace(b"Contact:", b"X-A: 1\r\nx-a: 2\r\nContact:"))
    msg.set_header("X-A", "3")
    assert msg.get_all("x-a") == ["3"]
    msg.append_header("X-B", "4")
    assert msg.headers[-1] == ("X-B", "4")
    assert msg.remove_header("X-A") == 1 and msg.remove_header("X-A") == 0
    assert msg.to_bytes() == INVITE.replace(b"\r\n\r\n", b"\r\nX-B: 4\r\n\r\n", 1)


def test_set_body_fixes_content_length() -> None:
    msg = parse(INVITE)
    msg.set_body(b"hello", "text/plain")
    again = parse(msg.to_bytes())
    assert again.body == b"hello" and again.content_length == 5 and again.content_type == "text/plain"


def test_edits_refuse_header_injection() -> None:
    msg = parse(INVITE)
    with pytest.raises(ValueError):
        msg.append_header("X-Evil", "a\r\nVia: forged")
    with pytest.raises(ValueError):
        msg.set_ruri("sip:a@b SIP/2.0\r\nX: y")
    with pytest.raises(ValueError):
        msg.append_header("Bad Name", "x")
