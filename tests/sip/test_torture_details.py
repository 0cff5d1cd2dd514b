"""What RFC 4475 / RFC 5118 say the valid torture messages mean, checked view by view."""
from __future__ import annotations

from pathlib import Path

import pytest

from kamrouter.sip import NameAddr, SipUri, parse, sanity_check

from .conftest import CONFORMANCE


def load(name: str):  # type: ignore[no-untyped-def]
    path = CONFORMANCE / name
    if not path.is_file():
        pytest.skip(f"conformance message not found: {path}")
    return parse(Path(path).read_bytes())


def test_wsinv_whitespace_folding_and_compact_forms() -> None:
    msg = load("wsinv.dat")
    assert msg.to_tag == "1918181833n" and msg.from_tag == "98asjd8"
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.max_forwards == 68 and msg.cseq.number == 9 and msg.cseq.method == "INVITE"
    assert [v.transport for v in msg.vias] == ["UDP", "TCP", "UDP"]
    assert [v.branch for v in msg.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert msg.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.get("s") == "" and msg.get("subject") == ""
    contact = msg.contacts[0]
    assert isinstance(contact, NameAddr) and contact.q == 0.33 and contact.params["newparam"] == "newvalue"
    assert "unknown-no-value" in msg.routes[0].uri.params  # type: ignore[union-attr]
    # popping Via values out of the folded, comma-joined "v:" line keeps the rest as received
    wire = msg.to_bytes()
    assert msg.pop_via() == "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw"
    assert msg.pop_via() == "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8"
    assert msg.via.branch == "z9hG4bK30239" and len(msg.vias) == 1
    assert msg.to_bytes() == wire.replace(
        b"Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n", b""
    ).replace(b"v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n ", b"v: ")


def test_intmeth_token_characters_everywhere() -> None:
    msg = load("intmeth.dat")
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = msg.uri
    assert isinstance(uri, SipUri) and uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_esc01_escapes_kept_never_recursively_unescaped() -> None:
    msg = load("esc01.dat")
    assert msg.uri.user == "sips%3Auser%40example.com"  # type: ignore[union-attr]
    assert msg.uri.user_unescaped == "sips:user@example.com"  # type: ignore[union-attr]
    assert msg.to.uri.user_unescaped == "user"  # type: ignore[union-attr]
    params = msg.contacts[0].uri.params  # type: ignore[index,union-attr]
    assert params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}


def test_escnull_distinct_contacts() -> None:
    msg = load("escnull.dat")
    users = [c.uri.user for c in msg.contacts]  # type: ignore[union-attr]
    assert users == ["%00", "%00%00"]
    assert msg.to.uri.user_unescaped == "null-\x00-null"  # type: ignore[union-attr]


def test_esc02_percent_that_is_not_an_escape() -> None:
    msg = load("esc02.dat")
    assert msg.method == "RE%47IST%45R" and msg.method != "REGISTER"
    assert msg.to.display == "%Z%45"
    assert len(msg.contacts) == 2 and msg.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_semiuri_user_part_with_semicolon() -> None:
    assert load("semiuri.dat").uri.user == "user;par=u%40example.net"  # type: ignore[union-attr]


def test_longreq_many_vias_in_mixed_spellings() -> None:
    msg = load("longreq.dat")
    assert len(msg.vias) == 34 and msg.vias[-1].host == "host.example.com"


def test_dblreq_trailing_datagram_junk_is_not_carried() -> None:
    path = CONFORMANCE / "dblreq.dat"
    if not path.is_file():  # as load(): a checkout without ../shared skips, never fails
        pytest.skip(f"conformance message not found: {path}")
    data = path.read_bytes()
    msg = parse(data)
    assert msg.method == "REGISTER" and msg.body == b""
    assert b"INVITE" not in msg.to_bytes() and data.startswith(msg.to_bytes())


def test_transports_and_multipart_and_reason_phrases() -> None:
    assert {v.transport for v in load("transports.dat").vias} >= {"UDP", "SCTP", "TLS", "UNKNOWN", "TCP"}
    mpart = load("mpart01.dat")
    assert b"\x00" in mpart.body and len(mpart.body) == mpart.content_length
    assert load("unreason.dat").status == 200
    noreason = load("noreason.dat")
    assert noreason.status == 100 and noreason.reason == ""


def test_badbranch_is_not_an_rfc3261_branch() -> None:
    via = load("badbranch.dat").via
    assert via.branch == "z9hG4bK" and not via.is_rfc3261


def test_inv2543_without_content_length_takes_the_rest_of_the_datagram() -> None:
    msg = load("inv2543.dat")
    assert msg.from_tag is None and msg.max_forwards is None and not msg.via.is_rfc3261
    assert msg.body.startswith(b"v=0") and msg.content_length == len(msg.body)
    msg.ensure_content_length()
    assert parse(msg.to_bytes()).content_length == len(msg.body)


def test_contact_parameter_placement() -> None:
    header_param = load("cparam01.dat").contacts[0]
    assert "unknownparam" in header_param.params and not header_param.uri.params  # type: ignore[union-attr]
    uri_param = load("cparam02.dat").contacts[0]
    assert not uri_param.params and "unknownparam" in uri_param.uri.params  # type: ignore[union-attr]


def test_regescrt_escaped_route_stays_escaped() -> None:
    uri = load("regescrt.dat").contacts[0].uri  # type: ignore[union-attr]
    assert uri.headers == {"Route": "%3Csip:sip.example.com%3E"}
    assert str(uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


def test_unksm2_other_schemes_in_headers_are_fine_for_a_proxy() -> None:
    msg = load("unksm2.dat")
    assert msg.to.uri.scheme == "isbn" and msg.from_.uri.scheme == "http"
    assert sanity_check(msg) is None


def test_bext01_proxy_require_lists_unsupported_options() -> None:
    msg = load("bext01.dat")
    error = sanity_check(msg, supported=["norDoAnyProxiesSupportThis"])
    assert error is not None and error.status == 420
    assert error.headers == [("Unsupported", "noProxiesSupportThis")]
    assert sanity_check(msg, supported=["noproxiessupportthis", "nordoanyproxiessupportthis"]) is None
    assert msg.require == ["nothingSupportsThis", "nothingSupportsThisEither"]  # a UAS matter


def test_unknown_and_atypical_request_uri_schemes_get_416() -> None:
    for name, scheme in (("unkscm.dat", "nobodyknowsthisscheme"), ("novelsc.dat", "soap.beep")):
        error = sanity_check(load(name))
        assert error is not None and error.status == 416 and scheme in error.reason


def test_zeromf_and_bcast() -> None:
    error = sanity_check(load("zeromf.dat"))
    assert error is not None and (error.status, error.reason) == (483, "Too Many Hops")
    bcast = load("bcast.dat")
    error = sanity_check(bcast)
    assert error is not None and "broadcast" in error.reason


def test_regaut01_unknown_scheme_kept_verbatim() -> None:
    msg = load("regaut01.dat")
    cred = msg.authorization[0]
    assert cred.scheme == "NoOneKnowsThisScheme" and not cred.is_digest
    assert str(cred) == "NoOneKnowsThisScheme opaque-data=here"


def test_rfc5118_ipv6_references() -> None:
    assert load("rfc5118/ipv6-good").uri.host == "[2001:db8::10]"  # type: ignore[union-attr]
    ambiguous = load("rfc5118/port-ambiguous").uri
    assert ambiguous.host_ip == "2001:db8::10:5070" and ambiguous.port is None  # type: ignore[union-attr]
    unambiguous = load("rfc5118/port-unambiguous").uri
    assert unambiguous.host == "[2001:db8::10]" and unambiguous.port == 5070  # type: ignore[union-attr]
    assert load("rfc5118/via-received-param-no-delim").via.received == "2001:db8::9:255"
    assert load("rfc5118/via-received-param-with-delim").via.received == "[2001:db8::9:255]"
    vias = load("rfc5118/mult-ip-in-header").vias
    assert [v.host for v in vias] == ["[2001:db8::9:1]", "192.0.2.1", "[2001:db8::9:255]"] and vias[0].port == 6050
