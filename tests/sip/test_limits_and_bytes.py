"""Bytes that are not UTF-8 survive every re-encode; header count limits; a datagram
without the empty line; the stream framer's 513 with a salvaged request."""
from __future__ import annotations

import pytest

from kamrouter.sip import (HeaderLimits, SipLimitError, SipParseError, StreamFramer,
                           make_response, parse, wire_bytes)

HEAD = (b"INVITE sip:bob@192.0.2.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKa\r\n"
        b"From: \"\xff\xfe\" <sip:alice@192.0.2.2>;tag=\xff\r\nTo: <sip:bob@192.0.2.1>\r\n"
        b"Call-ID: c\xff@x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n")


def test_a_reply_to_a_broken_request_carries_its_bytes_back_unchanged() -> None:
    with pytest.raises(SipParseError) as info:
        parse(HEAD + b"no colon here\r\nContent-Length: 0\r\n\r\n")
    request = info.value.message
    reply = make_response(request, 400, info.value.reason, to_tag="t").to_bytes()
    assert b"Call-ID: c\xff@x\r\n" in reply and b'From: "\xff\xfe"' in reply
    assert wire_bytes(request.get("Call-ID")) == b"c\xff@x"


@pytest.mark.parametrize(("extra", "reason"), [
    (b"X-A: 1\r\n" * 300, "Too Many Header Fields (more than 256)"),
    (b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb\r\n" * 70, "Too Many Via Values (more than 70)"),
    (b"Route: " + b", ".join([b"<sip:192.0.2.9;lr>"] * 71) + b"\r\n",
     "Too Many Route Values (more than 70)"),
    (b"Record-Route: <sip:192.0.2.9;lr>\r\n" * 71, "Too Many Record-Route Values (more than 70)"),
], ids=["headers", "vias", "routes", "record-routes"])
def test_header_count_limits_refuse_with_a_reason_that_names_them(extra, reason) -> None:
    with pytest.raises(SipLimitError) as info:
        parse(HEAD + extra + b"Content-Length: 0\r\n\r\n")
    assert (info.value.status, info.value.reason) == (400, reason)
    assert info.value.message is not None  # so the proxy can answer it


def test_limits_are_configurable_and_a_message_within_them_parses() -> None:
    data = HEAD + b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb\r\n" * 70 + b"Content-Length: 0\r\n\r\n"
    assert len(parse(data, limits=HeaderLimits(vias=71)).vias) == 71
    assert len(parse(HEAD + b"Allow: A, B, C, D, E, F, G, H, I, J\r\n" * 9 +
                     b"Content-Length: 0\r\n\r\n").vias) == 1  # many commas, one Via


@pytest.mark.parametrize("ending", [b"Content-Length: 0\r\n", b"Content-Length: 0", b"",
                                    b"X-Last: 1"])
def test_a_datagram_without_the_empty_line_is_a_message_without_body(ending) -> None:
    msg = parse(HEAD + ending)
    assert msg.body == b""
    assert msg.to_bytes().endswith(b"\r\n\r\n")  # forwarded with its empty line


def test_a_datagram_without_the_empty_line_but_with_a_body_length_gets_400() -> None:
    with pytest.raises(SipParseError) as info:
        parse(HEAD + b"Content-Length: 3\r\n")
    assert info.value.status == 400 and "no empty line" in info.value.reason
    assert info.value.message is not None


def test_the_framer_answers_an_endless_header_section_with_513_and_the_request() -> None:
    framer = StreamFramer(max_size=2000)
    framer.feed(HEAD + b"X-Filler: " + b"x" * 3000)
    with pytest.raises(SipLimitError) as info:
        framer.next_message()
    assert info.value.status == 513
    assert info.value.message is not None and info.value.message.method == "INVITE"


def test_the_framer_knows_a_message_has_begun_but_not_for_keepalives() -> None:
    framer = StreamFramer()
    framer.feed(b"\r\n")
    assert framer.next_message() is None and not framer.in_message
    framer.feed(b"\r\nOPT")
    assert framer.next_message() is None and framer.in_message
