"""REGISTER through the shipped example, driven by a Python phone: digest with MD5 and
SHA-256, wrong passwords, replayed nonce-counts, expires bounds, Contact: *, kamcli ul and
subscriber commands."""
from __future__ import annotations

from .conftest import DOMAIN, Phone, RegistrarRouter, add_users


def test_register_md5_and_sha256_then_kamcli_ul(router: RegistrarRouter) -> None:
    add_users(router, ("alice", "alicesecret"), ("bob", "bobsecret"))
    alice, bob = Phone(router, "alice", "alicesecret"), Phone(router, "bob", "bobsecret")
    challenge = alice.request()
    assert challenge.startswith("SIP/2.0 401")
    assert 'algorithm=MD5' in challenge and 'algorithm=SHA-256' in challenge
    reply = alice.request(authorization=alice.authorization(challenge, "REGISTER",
                                                            f"sip:{DOMAIN}", "MD5"))
    assert reply.startswith("SIP/2.0 200"), reply
    assert f"Contact: <sip:alice@127.0.0.1:{alice.port}>;expires=3600" in reply
    assert bob.register("SHA-256").startswith("SIP/2.0 200")

    rows = router.kamcli_ok("ul", "show")
    assert sorted((r["aor"], r["contact"]) for r in rows) == [
        ("alice", f"sip:alice@127.0.0.1:{alice.port}"), ("bob", f"sip:bob@127.0.0.1:{bob.port}")]
    assert all(r["user_agent"] is None and 3590 < r["expires"] <= 3600 for r in rows)
    one = router.kamcli_ok("ul", "show", "bob")
    assert [r["socket"] for r in one] == [f"udp:127.0.0.1:{router.port}"]
    table = router.kamcli_ok("ul", "show", output="table")
    assert "alice" in table and "expires" in table
    assert router.kamcli("ul", "show", "nobody").exit_code == 1

    router.kamcli_ok("ul", "add", "carol", "sip:carol@127.0.0.1:5999", "--expires", "600",
                     "--q", "0.5")
    carol = router.kamcli_ok("ul", "show", "carol")
    assert [(r["contact"], r["q"]) for r in carol] == [("sip:carol@127.0.0.1:5999", 0.5)]
    router.kamcli_ok("ul", "rm", "carol", "sip:carol@127.0.0.1:5999")
    router.kamcli_ok("ul", "rm", "alice")
    assert [r["aor"] for r in router.kamcli_ok("ul", "show")] == ["bob"]
    stats = router.kamcli_ok("stats", "usrloc:")
    assert stats["usrloc:registered_users"] == 1 and stats["usrloc:location-contacts"] == 1
    raw = router.kamcli_ok("rpc", "ul.dump")
    contact = raw["Domains"][0]["Domain"]["AoRs"][0]["Info"]["Contacts"][0]["Contact"]
    assert contact["Received"] == "[not set]" and contact["CSeq"] == 2


def test_wrong_password_replay_and_identity(router: RegistrarRouter) -> None:
    add_users(router, ("alice", "alicesecret"), ("bob", "bobsecret"))
    alice = Phone(router, "alice", "alicesecret")
    challenge = alice.request()
    wrong = alice.authorization(challenge, "REGISTER", f"sip:{DOMAIN}", password="guess")
    assert alice.request(authorization=wrong).startswith("SIP/2.0 403")
    good = alice.authorization(challenge, "REGISTER", f"sip:{DOMAIN}")
    assert alice.request(authorization=good).startswith("SIP/2.0 200")
    assert alice.resend().startswith("SIP/2.0 200")  # a UDP retransmission is no replay
    # the same nonce and nonce-count again (a replay, new CSeq): challenged again
    assert alice.request(authorization=good).startswith("SIP/2.0 401")
    # the next nonce-count of the same nonce is fine
    assert alice.request(authorization=alice.authorization(
        challenge, "REGISTER", f"sip:{DOMAIN}", nc=2)).startswith("SIP/2.0 200")
    # alice's credentials do not register bob
    challenge = alice.request(to_user="bob")
    reply = alice.request(to_user="bob", authorization=alice.authorization(
        challenge, "REGISTER", f"sip:{DOMAIN}"))
    assert reply.startswith("SIP/2.0 403")
    # an unknown user and a forged nonce
    mallory = Phone(router, "mallory", "x")
    challenge = mallory.request()
    assert mallory.request(authorization=mallory.authorization(
        challenge, "REGISTER", f"sip:{DOMAIN}")).startswith("SIP/2.0 403")
    forged = good.replace('nonce="', 'nonce="A', 1)
    reply = alice.request(authorization=forged)
    assert reply.startswith("SIP/2.0 401") and "stale=true" in reply
    stats = router.kamcli_ok("stats", "auth:")
    assert stats["auth:invalid_password"] == 1 and stats["auth:nonce_reused"] == 1
    assert stats["auth:user_unknown"] == 1 and stats["auth:user_mismatch"] == 1
    assert stats["auth:authenticated"] == 3  # with the retransmission


def test_expires_bounds_star_and_subscribers(router: RegistrarRouter) -> None:
    add_users(router, ("alice", "alicesecret"))
    alice = Phone(router, "alice", "alicesecret")
    reply = alice.register(expires=30)
    assert reply.startswith("SIP/2.0 423") and "Min-Expires: 60" in reply
    reply = alice.register(expires=100000)  # max_expires 7200
    assert ";expires=7200" in reply
    other = f"<sip:alice@127.0.0.1:{alice.port + 1}>;q=0.5"
    reply = alice.register(contacts=(f"<sip:alice@127.0.0.1:{alice.port}>", other))
    assert reply.count("Contact:") == 2
    assert alice.register(contacts=("*",), expires=5).startswith("SIP/2.0 400")
    reply = alice.register(contacts=("*",), expires=0)
    assert reply.startswith("SIP/2.0 200") and "Contact:" not in reply
    assert router.kamcli_ok("ul", "show") == []

    listed = router.kamcli_ok("subscriber", "list")
    assert listed == [{"username": "alice", "domain": DOMAIN, "algorithms": "MD5,SHA-256"}]
    assert "alice" in router.kamcli_ok("subscriber", "list", output="table")
    router.kamcli_ok("subscriber", "passwd", f"alice@{DOMAIN}", "newsecret")
    assert alice.register().startswith("SIP/2.0 403")
    alice.password = "newsecret"
    assert alice.register().startswith("SIP/2.0 200")
    assert router.kamcli("subscriber", "passwd", f"nobody@{DOMAIN}", "x").exit_code == 1
    assert router.kamcli("subscriber", "add", "nodomain", "x").exit_code == 2
    router.kamcli_ok("subscriber", "rm", f"alice@{DOMAIN}")
    assert router.kamcli_ok("subscriber", "list") == []
    stored = (router.workdir / "subscriber.sqlite").read_bytes()
    assert b"newsecret" not in stored and b"alicesecret" not in stored


def test_malformed_headers_are_answered_not_raised(router: RegistrarRouter) -> None:
    add_users(router, ("alice", "alicesecret"))
    alice = Phone(router, "alice", "alicesecret")
    for header in ('Authorization: Digest username="alice", realm=',
                   'Authorization: Digest realm="example.com", nonce="x", bogus',
                   'Authorization: Basic YWxpY2U6c2VjcmV0'):
        reply = alice.request(authorization=header)
        assert reply.startswith(("SIP/2.0 401", "SIP/2.0 400")), reply
    reply = alice.request(contacts=("<sip:alice@10.0.0.1>;q=7",))
    assert reply.startswith("SIP/2.0 401")  # authentication comes first
    assert "Traceback" not in router.process.log_tail()


def test_a_retransmitted_register_gets_the_same_challenge(router: RegistrarRouter) -> None:
    """Byte for byte: a UA (sipp) takes it for a retransmission, not for a new challenge."""
    add_users(router, ("alice", "alicesecret"))
    alice = Phone(router, "alice", "alicesecret")
    challenge = alice.request()
    assert challenge.startswith("SIP/2.0 401") and alice.resend() == challenge
    assert alice.request() != challenge  # the next request: a new nonce
