"""The fast paths for common shapes (Via, name-addr, URI) give the same result as the general
grammar, and hand everything else to it: errors keep their reasons."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kamrouter.sip import SipParseError, Via

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

FIELDS = ("protocol", "transport", "host", "port", "params")


def _outcome(parse, text: str) -> object:  # type: ignore[no-untyped-def]
    """The parsed fields, or the error reason."""
    try:
        value = parse(text)
    except SipParseError as err:
        return err.reason
    return tuple(getattr(value, name) for name in FIELDS)


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
