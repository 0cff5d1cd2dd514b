"""Digest computations (RFC 7616 test vectors), signed nonces and nonce-count tracking."""
from __future__ import annotations

import pytest

import kamrouter.modules.auth.nonce as nonce_module
from kamrouter.modules.auth.digest import ha1, response
from kamrouter.modules.auth.nonce import Nonces, NonceState

RFC7616 = dict(username="Mufasa", realm="http-auth@example.org", password="Circle of Life",
               nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
               cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")


def test_rfc7616_examples_md5_and_sha256() -> None:
    v = RFC7616
    for algorithm, expected in (("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
                                ("SHA-256", "753927fa0e85d155564e2e272a28d180"
                                            "2ca10daf4496794697cf8db5856cb6c1")):
        key = ha1(algorithm, v["username"], v["realm"], v["password"])
        assert response(algorithm, key, v["nonce"], "GET", "/dir/index.html", qop="auth",
                        nc="00000001", cnonce=v["cnonce"]) == expected


def test_auth_int_hashes_the_body() -> None:
    key = ha1("MD5", "alice", "example.com", "pw")
    plain = response("MD5", key, "n", "INVITE", "sip:bob@example.com", qop="auth-int",
                     nc="00000001", cnonce="c", body=b"v=0\r\n")
    other = response("MD5", key, "n", "INVITE", "sip:bob@example.com", qop="auth-int",
                     nc="00000001", cnonce="c", body=b"v=1\r\n")
    assert plain != other


def test_nonces_expire_and_cannot_be_forged() -> None:
    nonces = Nonces(b"secret", lifetime=300, cache_size=100)
    nonce = nonces.make(1000.0)
    assert nonces.check(nonce, 1200.0, None) is NonceState.VALID
    assert nonces.check(nonce, 1301.0, None) is NonceState.STALE
    assert Nonces(b"other", 300, 100).check(nonce, 1000.0, None) is NonceState.STALE
    tampered = ("B" if nonce[0] != "B" else "C") + nonce[1:]
    assert nonces.check(tampered, 1000.0, None) is NonceState.STALE
    assert nonces.check("garbage", 1000.0, None) is NonceState.STALE


def test_a_nonce_is_valid_only_in_the_worker_that_issued_it() -> None:
    # Its nonce-counts live there: another worker re-challenges instead of taking a replay.
    first, second = Nonces(b"secret", 300, 100, issuer=0), Nonces(b"secret", 300, 100, issuer=1)
    nonce = second.make(1000.0)
    assert second.check(nonce, 1000.0, "00000001") is NonceState.VALID
    assert first.check(nonce, 1000.0, "00000001") is NonceState.STALE
    assert first.check(nonce, 1000.0, None) is NonceState.STALE
    assert len(nonce) == len(first.make(1000.0))


def test_nonce_counts_must_grow_and_forgotten_nonces_are_stale() -> None:
    nonces = Nonces(b"secret", lifetime=300, cache_size=100)
    first = nonces.make(1000.0)
    assert nonces.check(first, 1000.0, "00000001", "req1") is NonceState.VALID
    nonces.use(first, "00000001", 1000.0, "req1")
    assert nonces.check(first, 1000.0, "00000001", "req2") is NonceState.REPLAYED
    # the same request again soon after is a UDP retransmission, later a replay
    assert nonces.check(first, 1030.0, "00000001", "req1") is NonceState.VALID
    assert nonces.check(first, 1040.0, "00000001", "req1") is NonceState.REPLAYED
    assert nonces.check(first, 1000.0, "00000002") is NonceState.VALID
    assert nonces.check(first, 1000.0, "zz") is NonceState.REPLAYED
    later = [nonces.make(1001.0) for _ in range(100)]
    for nonce in later:
        nonces.use(nonce, "00000001", 1001.0)  # pushes `first` out of the bounded cache
    assert nonces.check(first, 1001.0, "00000005") is NonceState.STALE  # never replayable
    fresh = nonces.make(1002.0)
    assert nonces.check(fresh, 1002.0, "00000001") is NonceState.VALID


def test_a_retransmitted_request_is_challenged_with_its_first_nonce(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nonce_module, "RECENT_CHALLENGES", 3)
    nonces = Nonces(b"k", lifetime=300, cache_size=100)
    first = nonces.make(1000.0, "call|1|z9hG4bK1")
    assert nonces.make(1031.0, "call|1|z9hG4bK1") == first  # within the window
    assert nonces.make(1031.0, "call|2|z9hG4bK2") != first  # another request
    assert nonces.make(1033.0, "call|1|z9hG4bK1") != first  # past the window: a new one
    assert nonces.make(1033.0, "") != nonces.make(1033.0, "")  # no request: always new
    for n in range(3, 7):  # the remembered challenges are bounded
        nonces.make(1034.0, f"call|{n}|z9hG4bK{n}")
    assert len(nonces._challenged) == 3
    short = Nonces(b"k", lifetime=20, cache_size=100)  # never hand out a nonce about to expire
    first = short.make(1000.0, "call|1|z9hG4bK1")
    assert short.make(1010.0, "call|1|z9hG4bK1") == first
    assert short.make(1011.0, "call|1|z9hG4bK1") != first
