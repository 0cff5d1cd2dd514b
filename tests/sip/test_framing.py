"""StreamFramer: cutting a TCP byte stream into messages by Content-Length."""
from __future__ import annotations

import pytest

from kamrouter.sip import SipParseError, StreamFramer, parse

from .messages import INVITE, RESPONSE_180


def test_frames_messages_fed_byte_by_byte() -> None:
    framer = StreamFramer()
    stream = INVITE + RESPONSE_180 + INVITE
    out = []
    for i in range(len(stream)):
        framer.feed(stream[i:i + 1])
        while (message := framer.next_message()) is not None:
            out.append(message)
    assert out == [INVITE, RESPONSE_180, INVITE] and framer.buffered == 0


def test_keepalives_are_skipped_and_counted() -> None:
    framer = StreamFramer()
    framer.feed(b"\r\n\r\n\r\n\r\n" + RESPONSE_180 + b"\r\n")
    assert framer.next_message() == RESPONSE_180
    assert framer.keepalives == 2
    assert framer.next_message() is None
    framer.feed(b"\r\n")
    assert framer.next_message() is None and framer.keepalives == 3


def test_compact_and_folded_content_length() -> None:
    framer = StreamFramer()
    msg = RESPONSE_180.replace(b"Content-Length: 0", b"l:\r\n 4") + b"body"
    framer.feed(msg)
    framed = framer.next_message()
    assert framed == msg and parse(framed).body == b"body"


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (RESPONSE_180.replace(b"Content-Length: 0\r\n", b""), 400, "Missing Content-Length"),
        (RESPONSE_180.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 0"), 400, "Duplicate Content-Length"),
        (RESPONSE_180.replace(b"Content-Length: 0", b"Content-Length: -1"), 400, "Bad Content-Length"),
        (RESPONSE_180.replace(b"Content-Length: 0", b"Content-Length: 99999"), 513, "Message Too Large"),
    ],
)
def test_framing_errors(data: bytes, status: int, reason: str) -> None:
    framer = StreamFramer()
    framer.feed(data)
    with pytest.raises(SipParseError) as info:
        framer.next_message()
    assert info.value.status == status and info.value.reason.startswith(reason)


def test_unterminated_header_section_over_limit() -> None:
    framer = StreamFramer(max_size=1000)
    framer.feed(b"INVITE sip:a@b SIP/2.0\r\nX: " + b"a" * 2000)
    with pytest.raises(SipParseError) as info:
        framer.next_message()
    assert info.value.status == 513
