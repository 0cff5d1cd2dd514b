"""RFC 4475 torture messages and the RFC 5118 IPv6 set, one test per file.

Valid messages parse, pass ``validate()`` and survive a no-op edit byte-identical.
Invalid ones are rejected (by parse() or by the typed views) with the expected status.
Group A messages (RFC 4475 §3.3) are well formed: the proxy-side verdict comes from
``sanity_check``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kamrouter.sip import SipParseError, parse, sanity_check

from .conftest import CONFORMANCE

VALID = "valid"
# file -> VALID, ("reject", status) or ("sanity", status)
EXPECTED: dict[str, object] = {
    # §3.1.1 valid
    "wsinv.dat": VALID, "intmeth.dat": VALID, "esc01.dat": VALID, "escnull.dat": VALID,
    "esc02.dat": VALID, "lwsdisp.dat": VALID, "longreq.dat": VALID, "dblreq.dat": VALID,
    "semiuri.dat": VALID, "transports.dat": VALID, "mpart01.dat": VALID,
    "unreason.dat": VALID, "noreason.dat": VALID,
    # §3.1.2 invalid
    "badinv01.dat": ("reject", 400), "clerr.dat": ("reject", 400), "ncl.dat": ("reject", 400),
    "scalar02.dat": ("reject", 400), "scalarlg.dat": ("reject", 400),
    "quotbal.dat": ("reject", 400), "ltgtruri.dat": ("reject", 400),
    "lwsruri.dat": ("reject", 400), "lwsstart.dat": ("reject", 400),
    "trws.dat": ("reject", 400), "escruri.dat": ("reject", 400),
    "baddate.dat": VALID,  # §3.1.2.12: only an element that cares about Date rejects it
    "regbadct.dat": ("reject", 400), "badaspec.dat": ("reject", 400),
    "baddn.dat": ("reject", 400), "badvers.dat": ("reject", 505),
    "mismatch01.dat": ("reject", 400), "mismatch02.dat": ("reject", 400),
    "bigcode.dat": ("reject", 400),
    # §3.2 transaction layer: accepted, the branch is not RFC 3261 (2543 matching)
    "badbranch.dat": VALID,
    # §3.3 application layer
    "insuf.dat": ("reject", 400), "unkscm.dat": ("sanity", 416),
    "novelsc.dat": ("sanity", 416), "unksm2.dat": VALID, "bext01.dat": ("sanity", 420),
    "invut.dat": VALID, "regaut01.dat": VALID, "multi01.dat": ("reject", 400),
    "mcl01.dat": ("reject", 400), "bcast.dat": ("sanity", 400), "zeromf.dat": ("sanity", 483),
    "cparam01.dat": VALID, "cparam02.dat": VALID, "regescrt.dat": VALID, "sdp01.dat": VALID,
    # §3.4 backward compatibility
    "inv2543.dat": VALID,
}

IPV6_EXPECTED: dict[str, object] = {
    "ipv6-good": VALID, "ipv6-bad": ("reject", 400), "port-ambiguous": VALID,
    "port-unambiguous": VALID, "via-received-param-with-delim": VALID,
    "via-received-param-no-delim": VALID, "ipv6-in-sdp": VALID, "mult-ip-in-header": VALID,
    "mult-ip-in-sdp": VALID, "ipv4-mapped-ipv6": VALID,
    "ipv6-bug-abnf-3-colons": VALID,  # RFC 5118 §4.10: be tolerant of the 3261 ABNF bug
    "ipv6-correct-abnf-2-colons": VALID,
}


def _read(path: Path) -> bytes:
    if not path.is_file():
        pytest.skip(f"conformance message not found: {path}")
    return path.read_bytes()


def _fix_content_length(data: bytes) -> bytes:
    """The RFC 5118 copies carry Content-Length values that do not match their CRLF
    bodies (see the README there); make them valid wire messages."""
    head, sep, body = data.partition(b"\r\n\r\n")
    return re.sub(rb"(?m)^Content-Length: *\d+", b"Content-Length: %d" % len(body), head) + sep + body


def _check(data: bytes, expected: object) -> None:
    if expected == VALID:
        msg = parse(data)
        msg.validate()
        assert sanity_check(msg, check_max_forwards=False) is None
        wire = msg.to_bytes()
        assert data.startswith(wire)
        copy = msg.copy()
        copy.append_header("X-No-Op", "1")
        assert copy.remove_header("x-no-op") == 1
        assert copy.to_bytes() == wire
        copy.prepend_via("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnoop")
        assert copy.pop_via() == "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnoop"
        assert copy.to_bytes() == wire
        return
    kind, status = expected  # type: ignore[misc]
    if kind == "reject":
        with pytest.raises(SipParseError) as info:
            parse(data).validate()
        assert info.value.status == status, str(info.value)
    else:
        msg = parse(data)
        error = sanity_check(msg)
        assert error is not None and error.status == status, error


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=sorted(EXPECTED))
def test_rfc4475(name: str) -> None:
    _check(_read(CONFORMANCE / name), EXPECTED[name])


@pytest.mark.parametrize("name", sorted(IPV6_EXPECTED), ids=sorted(IPV6_EXPECTED))
def test_rfc5118(name: str) -> None:
    _check(_fix_content_length(_read(CONFORMANCE / "rfc5118" / name)), IPV6_EXPECTED[name])


def test_every_file_has_an_expectation() -> None:
    if not CONFORMANCE.is_dir():
        pytest.skip("conformance messages not found")
    assert sorted(p.name for p in CONFORMANCE.glob("*.dat")) == sorted(EXPECTED)
    assert sorted(p.name for p in (CONFORMANCE / "rfc5118").iterdir()) == sorted(IPV6_EXPECTED)
