"""The fast paths for common shapes (Via, name-addr, URI) give the same result as the general
grammar, and hand everything else to it: errors keep their reasons."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kamrouter.sip import SipParseError, SipUri, Via, parse_name_addr, parse_uri
from kamrouter.sip.nameaddr import _parse_general

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=10)
hosts = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9.\-]{0,15}", fullmatch=True),
    st.sampled_from(["[2001:db8::1]", "[::1]", "192.0.2.1"]),
)
ports = st.one_of(st.none(), st.integers(0, 99999))
param_values = st.one_of(st.none(), tokens, st.sampled_from(["192.0.2.1", "2001:db8::1", "[::1]", "70000", "300"]))
param_names = st.one_of(tokens, st.sampled_from(["branch", "rport", "RPort", "ttl", "received", "maddr"]))
param_lists = st.lists(st.tuples(param_names, param_values), max_size=4)

VIA_FIELDS = ("protocol", "transport", "host", "port", "params")
URI_FIELDS = ("scheme", "user", "password", "host", "port", "params", "headers", "_param_text", "_text")


def _outcome(parse, text: str, fields: tuple[str, ...] = VIA_FIELDS) -> object:  # type: ignore[no-untyped-def]
    """The parsed fields, or the error reason."""
    try:
        value = parse(text)
    except SipParseError as err:
        return err.reason
    return tuple(getattr(value, name) for name in fields)


def _params(items: list[tuple[str, str | None]], pad: str) -> str:
    return "".join(f"{pad};{pad}{k}" if v is None else f"{pad};{pad}{k}{pad}={pad}{v}" for k, v in items)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["UDP", "TCP", "TLS", "tcp", "WSS"]), hosts, ports, param_lists)
def test_plain_via_matches_the_general_grammar(transport: str, host: str, port: int | None, params) -> None:  # type: ignore[no-untyped-def]
    plain = f"SIP/2.0/{transport} {host}{'' if port is None else f':{port}'}{_params(params, '')}"
    spaced = f"SIP / 2.0 / {transport}  {host}{'' if port is None else f' : {port}'}{_params(params, ' ')}"
    assert _outcome(Via, plain) == _outcome(Via, spaced)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SIP/2.0/UDP h;ttl=300", "Bad Via: bad ttl '300'"),
        ("SIP/2.0/UDP h;TTL=x", "Bad Via: bad ttl 'x'"),
        ("SIP/2.0/UDP h;rport=70000", "Bad Via: bad rport '70000'"),
        ("SIP/2.0/UDP h:70000;branch=z9hG4bK1", "Bad Via: port out of range: 70000"),
        ("SIP/2.0/UDP h;branch", None),
        ("SIP/2.0/UDP h;;branch=1", "Bad Via: empty parameter"),
        ("SIP/2.0/UDP -h;branch=1", "Bad Via: malformed value"),
        ("SIP/2.0/UDP h;branch=a b", "Bad Via: bad value for parameter 'branch'"),
    ],
)
def test_via_errors_keep_their_reasons(text: str, reason: str | None) -> None:
    if reason is None:
        Via(text)
        return
    with pytest.raises(SipParseError) as info:
        Via(text)
    assert info.value.reason.startswith(reason), info.value.reason


def test_via_forms_agree() -> None:
    plain = Via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;rport;received=2001:db8::2")
    assert (plain.protocol, plain.transport, plain.host, plain.port) == ("SIP/2.0", "UDP", "[2001:db8::1]", 5060)
    assert plain.params == {"branch": "z9hG4bKx", "rport": None, "received": "2001:db8::2"}
    general = Via('sip/2.0/udp h ;branch="q;x";BRANCH=2')
    assert (general.protocol, general.transport, general.params) == ("SIP/2.0", "UDP", {"branch": '"q;x"'})


users = st.one_of(st.none(), st.text("abcXYZ09-_.!~*'()&=+$,/", min_size=1, max_size=8), st.sampled_from(["a%20b", "a:pw", "a;b", "a?b"]))
uri_params = st.lists(
    st.tuples(st.sampled_from(["lr", "transport", "LR", "r2", "maddr", "x[1]", "a%41"]),
              st.one_of(st.none(), st.sampled_from(["udp", "TCP", "on", "192.0.2.1", "[::1]", "a/b:c", "", "%41"]))),
    max_size=3,
)


@st.composite
def sip_uri_texts(draw) -> str:  # type: ignore[no-untyped-def]
    user, port = draw(users), draw(ports)
    text = draw(st.sampled_from(["sip:", "sips:"])) + (f"{user}@" if user else "") + draw(hosts)
    text += "" if port is None else f":{port}"
    text += "".join(f";{k}" if v is None else f";{k}={v}" for k, v in draw(uri_params))
    return text + draw(st.sampled_from(["", "", "?h=1", ">", " "]))


@settings(max_examples=400, deadline=None)
@given(sip_uri_texts())
def test_plain_sip_uri_matches_the_general_grammar(text: str) -> None:
    general = _outcome(lambda t: SipUri(t, t[: t.index(":")]), text, URI_FIELDS)
    fast = _outcome(lambda t: parse_uri(t), text, URI_FIELDS)
    if isinstance(fast, str):  # parse_uri checks the delimiters before the general grammar
        assert fast == general or "whitespace or delimiter" in fast
    else:
        assert fast == general


NAME_ADDR_FIELDS = ("display", "params", "_text")


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["", "Bob ", "Bob  Smith\t", '"Bob" ', '"" ', '"B, o;b <x>"', '"a\\"b" ', "B@b ", "Bob"]),
    sip_uri_texts(),
    st.booleans(),
    param_lists,
)
def test_plain_name_addr_matches_the_general_grammar(display: str, uri: str, angled: bool, params) -> None:  # type: ignore[no-untyped-def]
    text = (f"{display}<{uri}>" if angled else uri) + _params(params, "")

    def fields(parse):  # type: ignore[no-untyped-def]
        try:
            na = parse(text)
        except SipParseError as err:
            return err.reason
        return (str(na.uri), *(getattr(na, name) for name in NAME_ADDR_FIELDS))

    assert fields(lambda t: parse_name_addr(t, "To")) == fields(lambda t: _parse_general(t, "To"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Bob <sip:bob@x:99999>;tag=1", "Bad To: URI: bad port '99999'"),
        ("Bob <sip:bob@-x>;tag=1", "Bad To: URI: bad host '-x'"),
        ("Bob <sip:bob@x>;tag=", "Bad To: bad value for parameter 'tag'"),
        ("Bob <sip:bob@x>;;tag=1", "Bad To: empty parameter"),
        ("Bob <sip:bob@x", "Bad To: missing '>'"),
        ('"Bob <sip:bob@x>', "Bad To: unterminated quoted display name"),
        ("Bob, Jr <sip:bob@x>", "Bad To: display name 'Bob, Jr' must be quoted"),
        ("sip:bob@x?subject=1;tag=1", "Bad To: a URI with '?' or ',' must be enclosed in <>"),
    ],
)
def test_name_addr_errors_keep_their_reasons(text: str, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_name_addr(text, "To")
    assert info.value.reason == reason
