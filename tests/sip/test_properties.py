"""Property tests: hostile bytes never raise anything but SipParseError (and never hit the
internal-error safety net); generated valid messages round-trip byte-identically."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kamrouter.sip import (
    Message,
    SipParseError,
    StreamFramer,
    generate_branch,
    make_response,
    parse,
    sanity_check,
)

from .conftest import CONFORMANCE
from .messages import INVITE, RESPONSE_180

BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    seeds = [INVITE, RESPONSE_180]
    if CONFORMANCE.is_dir():
        seeds += [p.read_bytes() for p in sorted(CONFORMANCE.glob("*.dat"))]
        seeds += [p.read_bytes() for p in sorted((CONFORMANCE / "rfc5118").iterdir())]
    return seeds


SEEDS = _seeds()


def _no_internal_error(err: SipParseError) -> None:
    assert "(internal" not in err.reason, err.reason
    assert 400 <= err.status <= 599


def exercise(data: bytes) -> None:
    """Parse and read every view, edit, serialise: only SipParseError may come out."""
    try:
        msg = parse(data)
    except SipParseError as err:
        _no_internal_error(err)
        return
    for read in (
        lambda m: m.validate(),
        lambda m: m.uri if m.is_request else m.status,
        lambda m: m.get_all("Contact"),
        lambda m: m.headers,
        lambda m: [m.require, m.proxy_require, m.content_type, m.body],
        lambda m: sanity_check(m),
    ):
        try:
            read(msg)
        except SipParseError as err:
            _no_internal_error(err)
    _edit_round_trip(msg)


def _edit_round_trip(msg: Message) -> None:
    wire = msg.to_bytes()
    copy = msg.copy()
    copy.prepend_via(f"SIP/2.0/UDP 127.0.0.1:5060;branch={generate_branch()}")
    copy.prepend_header("Record-Route", "<sip:127.0.0.1;lr>")
    copy.pop_via()
    copy.remove_header("Record-Route")
    if not msg.has("Record-Route"):
        assert copy.to_bytes() == wire
    assert msg.to_bytes() is wire
    if msg.is_request:
        try:
            make_response(msg, 400, "Bad Request").to_bytes()  # type: ignore[arg-type]
        except SipParseError as err:
            _no_internal_error(err)


@BOUNDED
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    exercise(data)


@BOUNDED
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    exercise(bytes(data))


@BOUNDED
@given(st.sampled_from(SEEDS), st.integers(0, 10**6))
def test_truncation(seed: bytes, cut: int) -> None:
    exercise(seed[: cut % (len(seed) + 1)])


@BOUNDED
@given(st.sampled_from(SEEDS), st.randoms(use_true_random=False))
def test_header_shuffle(seed: bytes, rnd) -> None:  # type: ignore[no-untyped-def]
    head, sep, body = seed.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = lines[1:]
    rnd.shuffle(headers)
    exercise(b"\r\n".join([lines[0], *headers]) + sep + body)


@BOUNDED
@given(
    st.sampled_from(SEEDS),
    st.integers(0, 10**6),
    st.sampled_from([b"a", b",", b";", b'"', b"<", b">", b"%", b"\\", b" ", b"\x00", b"\xff", b"9", b":", b"@", b"["]),
    st.integers(1, 20000),
)
def test_giant_values(seed: bytes, where: int, unit: bytes, count: int) -> None:
    pos = where % (len(seed) + 1)
    exercise(seed[:pos] + unit * count + seed[pos:])


@BOUNDED
@given(st.sampled_from(SEEDS), st.integers(0, 10**6), st.binary(min_size=1, max_size=40))
def test_inserted_bytes(seed: bytes, where: int, junk: bytes) -> None:
    pos = where % (len(seed) + 1)
    exercise(seed[:pos] + junk + seed[pos:])


# ------------------------------------------------------------------ generated valid messages
TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
user_chars = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/", min_size=1, max_size=12)
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
hosts = st.one_of(
    st.lists(labels, min_size=1, max_size=3).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["[2001:db8::1]", "[::1]", "[::ffff:192.0.2.1]"]),
)
ports = st.one_of(st.none(), st.integers(1, 65535))
quoted = st.text(st.characters(codec="utf-8", exclude_characters='"\\\r\n', exclude_categories=["Cs", "Cc"]), max_size=20)


@st.composite
def sip_uris(draw) -> str:  # type: ignore[no-untyped-def]
    user = draw(st.one_of(st.none(), user_chars))
    port = draw(ports)
    params = draw(st.lists(st.tuples(labels, st.one_of(st.none(), labels)), max_size=3))
    text = "sip:" + (f"{user}@" if user else "") + draw(hosts) + (f":{port}" if port else "")
    return text + "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


@st.composite
def name_addrs(draw) -> str:  # type: ignore[no-untyped-def]
    uri = draw(sip_uris())
    display = draw(st.one_of(st.none(), quoted.map(lambda d: f'"{d}" '), tokens.map(lambda t: t + " ")))
    return f"{display or ''}<{uri}>"


@st.composite
def requests(draw) -> tuple[bytes, dict[str, object]]:  # type: ignore[no-untyped-def]
    method = draw(tokens)
    ruri = draw(sip_uris())
    from_tag = draw(tokens)
    call_id = draw(tokens) + "@" + draw(hosts)
    cseq = draw(st.integers(0, 2**31 - 1))
    vias = draw(st.lists(st.tuples(st.sampled_from(["UDP", "TCP", "TLS", "SCTP"]), hosts, ports, tokens), min_size=1, max_size=4))
    via_lines = [
        f"Via: SIP/2.0/{t} {h}{f':{p}' if p else ''};branch=z9hG4bK{b}" for t, h, p, b in vias
    ]
    contacts = draw(st.lists(name_addrs(), max_size=3))
    extras = draw(st.lists(st.tuples(st.sampled_from(["X-A", "Subject", "User-Agent", "X-Long"]), st.text(TOKEN_CHARS + " ,;=<>@:", max_size=40)), max_size=4))
    body = draw(st.binary(max_size=300))
    mf = draw(st.integers(0, 255))
    lines = [f"{method} {ruri} SIP/2.0", *via_lines, f"Max-Forwards: {mf}",
             f"From: {draw(name_addrs())};tag={from_tag}", f"To: {draw(name_addrs())}",
             f"Call-ID: {call_id}", f"CSeq: {cseq} {method}"]
    if contacts:
        lines.append("Contact: " + ", ".join(contacts))
    lines += [f"{name}: {value}".rstrip() for name, value in extras]
    lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    facts = {"method": method, "ruri": ruri, "from_tag": from_tag, "call_id": call_id, "cseq": cseq,
             "branches": [f"z9hG4bK{b}" for *_, b in vias], "contacts": len(contacts), "body": body, "mf": mf}
    return data, facts


@BOUNDED
@given(requests())
def test_generated_requests_round_trip(case: tuple[bytes, dict[str, object]]) -> None:
    data, facts = case
    msg = parse(data)
    msg.validate()
    assert msg.to_bytes() == data
    assert (msg.method, msg.ruri, msg.from_tag, msg.call_id) == (facts["method"], facts["ruri"], facts["from_tag"], facts["call_id"])  # type: ignore[attr-defined]
    assert msg.cseq.number == facts["cseq"] and msg.max_forwards == facts["mf"] and msg.body == facts["body"]
    assert [v.branch for v in msg.vias] == facts["branches"]
    assert len(msg.contacts) == facts["contacts"]
    assert str(msg.uri) == facts["ruri"]  # type: ignore[attr-defined]
    # forwarding edits leave every other byte as received
    fwd = msg.copy()
    fwd.prepend_via("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKfwd")
    assert fwd.to_bytes().replace(b"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKfwd\r\n", b"", 1) == data
    assert fwd.pop_via() == "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKfwd" and fwd.to_bytes() == data
    assert parse(fwd.to_bytes()).vias == msg.vias


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=1, max_size=4), st.lists(st.integers(1, 200), min_size=1, max_size=20))
def test_stream_framing_reassembles(cases, chunk_sizes) -> None:  # type: ignore[no-untyped-def]
    messages = [data for data, _ in cases]
    stream = b"".join(messages)
    framer = StreamFramer()
    out = []
    pos = 0
    i = 0
    while pos < len(stream):
        size = chunk_sizes[i % len(chunk_sizes)]
        framer.feed(stream[pos:pos + size])
        pos += size
        i += 1
        while (message := framer.next_message()) is not None:
            out.append(message)
    assert out == messages
