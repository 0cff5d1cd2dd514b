"""Header access and typed views."""
from __future__ import annotations

import pytest

from kamrouter.sip import (
    COMPACT,
    AbsoluteUri,
    SipParseError,
    SipUri,
    TelUri,
    parse,
    parse_challenge,
    parse_credentials,
    parse_name_addr,
    parse_uri,
    split_commas,
)

from .messages import INVITE, RESPONSE_180


def test_names_are_case_insensitive_and_compact_forms_expand() -> None:
    msg = parse(INVITE.replace(b"Call-ID:", b"i:").replace(b"Contact:", b"m:"))
    assert msg.get("call-id") == msg.get("CALL-ID") == msg.get("i") == "a84b4c76e66710@pc33.example.org"
    assert msg.has("Contact") and msg.has("M")
    assert ("Call-ID", "a84b4c76e66710@pc33.example.org") in msg.headers
    assert msg.get("X-Missing") is None and msg.get_all("X-Missing") == [] and not msg.has("x-missing")


@pytest.mark.parametrize("letter", sorted(COMPACT))
def test_every_compact_form(letter: str) -> None:
    long_name = COMPACT[letter].encode()
    lines = INVITE.split(b"\r\n")
    renamed = [f"{letter}:".encode() + line.split(b":", 1)[1] if line.lower().startswith(long_name + b":") else line for line in lines]
    data = b"\r\n".join(renamed)
    if data == INVITE:
        data = INVITE.replace(b"Contact:", f"{letter}: x\r\nContact:".encode())
    msg = parse(data)
    assert msg.has(COMPACT[letter]) and msg.get(letter) == msg.get(COMPACT[letter]) is not None


def test_get_all_splits_list_headers_only_outside_quotes_and_angles() -> None:
    data = INVITE.replace(
        b"Contact: <sip:alice@192.0.2.10:5060>",
        b'Contact: "Doe, John" <sip:a,b@x;p=1>, <sip:b@y>\r\nAllow: INVITE, ACK\r\nallow: BYE\r\n'
        b"Date: Sat, 13 Nov 2010 23:29:00 GMT",
    )
    msg = parse(data)
    assert msg.get_all("Contact") == ['"Doe, John" <sip:a,b@x;p=1>', "<sip:b@y>"]
    assert msg.get_all("allow") == ["INVITE", "ACK", "BYE"]
    assert msg.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert [c.display for c in msg.contacts] == ["Doe, John", None]  # type: ignore[union-attr]


def test_split_commas_escaped_quote() -> None:
    assert split_commas(r'"a \", b" <sip:x>, c') == [r'"a \", b" <sip:x>', "c"]


def test_request_views() -> None:
    msg = parse(INVITE)
    assert msg.is_request and msg.method == "INVITE" and msg.version == "SIP/2.0"
    assert msg.call_id == "a84b4c76e66710@pc33.example.org"
    assert (msg.cseq.number, msg.cseq.method) == (314159, "INVITE")
    assert msg.from_.display == "Alice A." and msg.from_tag == "1928301774" and msg.to_tag is None
    assert msg.via.sent_by == "192.0.2.10:5060" and msg.via.has_rport and msg.via.rport is None
    assert msg.max_forwards == 70 and msg.content_type == "application/sdp"
    assert msg.content_length == len(msg.body) > 0
    assert [str(r.uri) for r in msg.routes] == ["sip:p1.example.net;lr", "sip:p2.example.net;lr"]
    assert all(r.uri.lr for r in msg.routes)  # type: ignore[union-attr]
    assert msg.record_routes == [] and msg.expires is None and msg.proxy_require == []


def test_response_views() -> None:
    msg = parse(RESPONSE_180)
    assert not msg.is_request and (msg.status, msg.reason) == (180, "Ringing")
    assert msg.to_tag == "a6c85cf" and msg.via.rport == 5060
    msg.set_status(183)
    assert msg.to_bytes().startswith(b"SIP/2.0 183 Session Progress\r\n")


def test_contact_star_and_expires() -> None:
    msg = parse(INVITE.replace(b"Contact: <sip:alice@192.0.2.10:5060>", b"Contact: *\r\nExpires: 0"))
    assert msg.contacts == "*" and msg.expires == 0


def test_sip_uri_parts() -> None:
    uri = parse_uri("sips:alice:pw@[2001:db8::1]:5061;transport=TCP;lr;maddr=239.255.255.1?subject=hi&x=1")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.host_ip, uri.port) == (
        "sips", "alice", "pw", "[2001:db8::1]", "2001:db8::1", 5061)
    assert uri.transport == "tcp" and uri.lr and uri.maddr == "239.255.255.1"
    assert uri.headers == {"subject": "hi", "x": "1"}
    assert str(uri.with_params(transport="udp")) == "sips:alice:pw@[2001:db8::1]:5061;transport=udp;lr;maddr=239.255.255.1?subject=hi&x=1"
    assert str(uri.replace(host="h.example", port=None)).startswith("sips:alice:pw@h.example;transport=TCP")


def test_other_uri_schemes() -> None:
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(tel, TelUri) and tel.number == "+1-201-555-0123" and tel.params == {"phone-context": "example.com"}
    other = parse_uri("urn:service:sos")
    assert isinstance(other, AbsoluteUri) and other.scheme == "urn"
    with pytest.raises(SipParseError) as info:
        parse_uri("urn:service:sos", require_sip=True)
    assert info.value.status == 416


@pytest.mark.parametrize("text", ["sip:", "sip:user@", "sip:host:99999", "sip:a b@c", "sip:[::1", "nocolon", "sip:h;=x", "sip:u%zz@h"])
def test_bad_uris(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400 and info.value.reason.startswith("Bad URI")


def test_name_addr_forms() -> None:
    na = parse_name_addr('"Bob \\"B\\"" <sip:bob@x>;tag=1;expires=60;q=0.5')
    assert (na.display, na.tag, na.expires, na.q) == ('Bob "B"', "1", 60, 0.5)
    assert str(na) == '"Bob \\"B\\"" <sip:bob@x>;tag=1;expires=60;q=0.5'
    bare = parse_name_addr("sip:bob@x;tag=2")
    assert bare.display is None and bare.tag == "2" and str(bare.uri) == "sip:bob@x"
    assert str(bare.with_params(tag="3")) == "<sip:bob@x>;tag=3"


def test_via_fields() -> None:
    msg = parse(INVITE.replace(b";rport\r\n", b";rport=5070;received=198.51.100.7;maddr=239.1.1.1;ttl=16\r\n"))
    via = msg.via
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "UDP", "192.0.2.10", 5060)
    assert (via.rport, via.received, via.maddr, via.ttl, via.branch) == (5070, "198.51.100.7", "239.1.1.1", 16, "z9hG4bK776asdhds")
    assert via.is_rfc3261


def test_digest_credentials_and_challenges() -> None:
    cred = parse_credentials(
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", '
        'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert cred.is_digest and cred.username == "bob" and cred.realm == "biloxi.com"
    assert cred.uri == "sip:bob@biloxi.com" and cred.qop == "auth" and cred.nc == "00000001"
    challenge = parse_challenge('Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5')
    assert challenge.realm == "atlanta.com" and challenge.stale == "FALSE" and challenge.opaque == ""
    msg = parse(INVITE.replace(b"Contact:", b'Proxy-Authorization: Digest username="a", realm="r", nonce="n", uri="sip:x", response="00"\r\nContact:'))
    assert msg.proxy_authorization[0].username == "a" and msg.authorization == []
    with pytest.raises(SipParseError):
        parse_credentials('Digest username="unterminated')


@pytest.mark.parametrize(
    ("replace", "by", "reason"),
    [
        (b"To: Bob <sip:bob@example.com>", b"To: Bob <sip:bob@example.com", "Bad To: missing '>'"),
        (b"Max-Forwards: 70", b"Max-Forwards: 256", "Bad Max-Forwards"),
        (b"Max-Forwards: 70", b"Max-Forwards: x", "Bad Max-Forwards"),
        (b"Route: <sip:p1.example.net;lr>, ", b"Route: <sip:p1.example.net;lr>,, ", "Bad Route: empty list item"),
        (b"Call-ID: a84b4c76e66710@pc33.example.org", b"Call-ID: a b", "Bad Call-ID"),
    ],
)
def test_lazy_view_errors_name_the_header(replace: bytes, by: bytes, reason: str) -> None:
    msg = parse(INVITE.replace(replace, by))
    with pytest.raises(SipParseError) as info:
        msg.validate()
    assert info.value.status == 400 and info.value.reason.startswith(reason)
