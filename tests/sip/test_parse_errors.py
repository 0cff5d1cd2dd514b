"""parse(): what is checked eagerly, and the status/reason of each rejection."""
from __future__ import annotations

import pytest

from kamrouter.sip import Request, SipParseError, make_response, parse

from .messages import INVITE, RESPONSE_180


@pytest.mark.parametrize(
    ("replace", "by", "status", "reason"),
    [
        (b"CSeq: 314159 INVITE", b"CSeq: 2147483648 INVITE", 400, "Bad CSeq: number out of range"),
        (b"CSeq: 314159 INVITE", b"CSeq: 1 BYE", 400, "Bad CSeq: method BYE does not match the request method"),
        (b"CSeq: 314159 INVITE", b"CSeq: INVITE", 400, "Bad CSeq: malformed value"),
        (b"Call-ID: a84b4c76e66710@pc33.example.org\r\n", b"", 400, "Missing Call-ID header"),
        (b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n", b"", 400, "Missing Via header"),
        (b"To: Bob <sip:bob@example.com>", b"To: a <sip:a@b>\r\nt: b <sip:b@c>", 400, "Duplicate To header"),
        (b"Max-Forwards: 70", b"Max-Forwards: 70\r\nMax-Forwards: 69", 400, "Duplicate Max-Forwards header"),
        (b"Content-Length: ", b"Content-Length: 9", 400, "Bad Content-Length: 9"),
        (b"Via: SIP/2.0/UDP 192.0.2.10:5060;", b"Via: SIP/2.0/UDP 192.0.2.10:70000;", 400, "Bad Via: port out of range"),
        (b"Via: SIP/2.0/UDP 192.0.2.10:5060;", b"Via: SIP/2.0 192.0.2.10:5060;", 400, "Bad Via: malformed value"),
        (b"INVITE sip:bob@example.com SIP/2.0", b"INVITE sip:bob@example.com SIP/3.0", 505, "Version Not Supported: SIP/3.0"),
        (b"INVITE sip:bob@example.com SIP/2.0", b"INVITE sip:bob@example.com HTTP/1.1", 400, "Bad start line: version"),
        (b"INVITE sip:bob@example.com SIP/2.0", b"INV(ITE sip:bob@example.com SIP/2.0", 400, "Bad request line: method"),
        (b"Max-Forwards: 70", b"Max Forwards: 70", 400, "Bad header name: 'Max Forwards'"),
        (b"Max-Forwards: 70", b"Max-Forwards 70", 400, "Malformed header line 'Max-Forwards 70'"),
        (b"Max-Forwards: 70", b"Max-Forwards: 70\nX: 1", 400, "Malformed message: bare CR or LF in the header section"),
    ],
)
def test_eager_rejections(replace: bytes, by: bytes, status: int, reason: str) -> None:
    data = INVITE.replace(replace, by, 1)
    assert data != INVITE
    with pytest.raises(SipParseError) as info:
        parse(data)
    assert info.value.status == status
    assert info.value.reason.startswith(reason), info.value.reason
    assert str(info.value) == f"{info.value.status} {info.value.reason}"


def test_salvaged_message_can_be_answered() -> None:
    with pytest.raises(SipParseError) as info:
        parse(INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
    salvaged = info.value.message
    assert isinstance(salvaged, Request) and salvaged.method == "INVITE"
    reply = make_response(salvaged, info.value.status, info.value.reason).to_bytes()
    assert reply.startswith(b"SIP/2.0 505 Version Not Supported: SIP/3.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060")


def test_size_limit_and_empty_and_keepalive() -> None:
    with pytest.raises(SipParseError) as info:
        parse(INVITE, max_size=100)
    assert info.value.status == 513
    for data in (b"", b"\r\n\r\n", b"garbage"):
        with pytest.raises(SipParseError):
            parse(data)
    assert parse(b"\r\n" + INVITE).to_bytes() == INVITE


def test_bad_status_lines() -> None:
    for line in (b"SIP/2.0 99 Low", b"SIP/2.0 700 High", b"SIP/2.0 2OO OK", b"SIP/2.0"):
        with pytest.raises(SipParseError) as info:
            parse(RESPONSE_180.replace(b"SIP/2.0 180 Ringing", line))
        assert info.value.status == 400


def test_datagram_body_longer_than_content_length_is_truncated() -> None:
    msg = parse(RESPONSE_180 + b"trailing junk")
    assert msg.body == b"" and msg.to_bytes() == RESPONSE_180


def test_memoryview_and_bytearray_input() -> None:
    assert parse(bytearray(INVITE)).to_bytes() == INVITE
    assert parse(memoryview(INVITE)).to_bytes() == INVITE  # type: ignore[arg-type]


def test_salvage_skips_only_the_malformed_header_line() -> None:
    with pytest.raises(SipParseError) as info:
        parse(INVITE.replace(b"Max-Forwards: 70", b"Max Forwards: 70"))
    salvaged = info.value.message
    assert salvaged is not None and not salvaged.has("Max-Forwards")
    assert salvaged.get("Call-ID") == "a84b4c76e66710@pc33.example.org"
    assert make_response(salvaged, 400).to_bytes().count(b"\r\nVia: ") == 1  # type: ignore[arg-type]
