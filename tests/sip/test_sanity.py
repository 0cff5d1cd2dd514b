"""sanity_check on requests: every malformed From/To/Call-ID/Via value is answered with a 400
naming the header, whichever Via (top, later line, later value in a line) is at fault."""
from __future__ import annotations

import pytest

from kamrouter.sip import parse, sanity_check

from .messages import INVITE

TOP_VIA = b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"


def test_well_formed_request_passes() -> None:
    assert sanity_check(parse(INVITE), check_max_forwards=False) is None
    more_vias = INVITE.replace(TOP_VIA, TOP_VIA + b"Via: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKb, SIP/2.0/UDP [2001:db8::1]\r\n")
    assert sanity_check(parse(more_vias), check_max_forwards=False) is None


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (b"From: \"Alice A.\" <sip:alice@example.org>", b"From: Alice A. <sip:alice@exa mple.org>", "Bad From: URI: whitespace or delimiter inside"),
        (b"From: \"Alice A.\" <sip:alice@example.org>", b"From: Alice <sip:alice@example.org >", "Bad From: whitespace inside <>"),
        (b"From: \"Alice A.\" <sip:alice@example.org>", b"From: <sip:alice@example.org:0x50>", "Bad From: URI: bad port '0x50'"),
        (b"To: Bob <sip:bob@example.com>", b"To: Bob <sip:bob@example.com", "Bad To: missing '>'"),
        (b"To: Bob <sip:bob@example.com>", b"To: Bob <sip:bob@example.com>;tag", None),
        (b"To: Bob <sip:bob@example.com>", b"To: Bob <sip:bob@example.com>;=x", "Bad To: empty parameter"),
        (b"Call-ID: a84b4c76e66710@pc33.example.org", b"Call-ID: a84b4c76 e66710", "Bad Call-ID: malformed value"),
        (TOP_VIA, TOP_VIA + b"Via: SIP/2.0/UDP 192.0.2.2;rport=99999\r\n", "Bad Via: bad rport '99999'"),
        (TOP_VIA, TOP_VIA + b"Via: SIP/2.0/UDP 192.0.2.2, SIP/2.0 192.0.2.3\r\n", "Bad Via: malformed value 'SIP/2.0 192.0.2.3'"),
        (TOP_VIA, TOP_VIA.replace(b";rport", b";rport, ,SIP/2.0/UDP h"), "Bad Via: empty value in list"),
        (b"sip:bob@example.com SIP/2.0", b"sip:bob@example.com:99999 SIP/2.0", "Bad Request-URI: bad port '99999'"),
    ],
)
def test_malformed_values_are_answered_with_their_reason(old: bytes, new: bytes, reason: str | None) -> None:
    data = INVITE.replace(old, new, 1)
    assert data != INVITE
    error = sanity_check(parse(data), check_max_forwards=False)
    if reason is None:
        assert error is None
        return
    assert error is not None and error.status == 400
    assert error.reason.startswith(reason), error.reason
