"""Two registrar routers sharing one real redis-server and one subscriber file: the shipped
registrar example with [usrloc] db_mode = "redis", and the shipped two-node example
(etc/nodes/node-a.toml on 127.0.0.2, node-b.toml on 127.0.0.3, Redis-backed location and
ban list). A sipp phone registered through router A is called by a sipp phone through
router B; unregistered through A, the call through B gets 404. kamcli on either router
shows and changes the shared tables."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support.ports import free_port
from support.redis import RedisServer
from support.sipp import Sipp
from support.wait import wait_until

from .conftest import DOMAIN, ETC, Phone, RegistrarRouter, add_users
from .test_calls import run_ok, sipp_phone

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")

Pair = tuple[RegistrarRouter, RegistrarRouter]
#: (config, address) of each router of a set-up; the location table is Redis in both.
SETUPS: dict[str, tuple[tuple[Path, str], tuple[Path, str], dict[str, Any]]] = {
    "registrar.toml": ((ETC / "registrar.toml", "127.0.0.1"),
                       (ETC / "registrar.toml", "127.0.0.1"), {"db_mode": "redis"}),
    "nodes": ((ETC / "nodes/node-a.toml", "127.0.0.2"),
              (ETC / "nodes/node-b.toml", "127.0.0.3"), {}),
}


@contextmanager
def two_routers(setup: str, tmp_path: Path, redis_server: RedisServer) -> Iterator[Pair]:
    (config_a, host_a), (config_b, host_b), usrloc = SETUPS[setup]
    shared = {"redis_url": redis_server.url, "usrloc": usrloc,
              "auth": {"db_file": str(tmp_path / "subscriber.sqlite")}}
    a = RegistrarRouter(tmp_path / "a", config_a, host_a, **shared).start()
    b = None
    try:
        add_users(a, ("alice", "alicesecret"), ("bob", "bobsecret"))
        b = RegistrarRouter(tmp_path / "b", config_b, host_b, **shared).start()
        yield a, b
    finally:
        a.stop()
        if b is not None:
            b.stop()


@pytest.fixture(params=list(SETUPS))
def routers(request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
            ) -> Iterator[Pair]:
    with two_routers(request.param, tmp_path, redis_server) as pair:
        yield pair


@pytest.fixture
def nodes(tmp_path: Path, redis_server: RedisServer) -> Iterator[Pair]:
    with two_routers("nodes", tmp_path, redis_server) as pair:
        yield pair


def contacts(router: RegistrarRouter, aor: str) -> list[str]:
    """The AoR's contacts as ``kamcli ul show AOR`` on ``router`` lists them ([]: 404)."""
    result = router.kamcli("ul", "show", aor)
    if result.exit_code == 1 and "AOR not found" in result.output:
        return []
    assert result.exit_code == 0, result.output
    return [row["contact"] for row in json.loads(result.stdout)]


def call_through(router: RegistrarRouter) -> str:
    """alice calls bob through ``router`` (a Python phone): the final reply's first line."""
    alice = Phone(router, "alice", "alicesecret")
    try:
        ruri = f"sip:bob@{DOMAIN}"
        challenge = alice.request("INVITE", ruri=ruri, to_user="bob", expires=None)
        assert challenge.startswith("SIP/2.0 407"), challenge
        auth = alice.authorization(challenge, "INVITE", ruri)
        return alice.request("INVITE", ruri=ruri, to_user="bob", expires=None,
                             authorization=auth).partition("\r\n")[0]
    finally:
        alice.close()


def test_registered_through_a_called_through_b(
        routers: Pair, tmp_path: Path) -> None:
    a, b = routers
    bob_port = free_port()
    run_ok(sipp_phone(a, tmp_path, "register.xml", "bob", "bobsecret", bob_port), a)
    bob_contact = f"sip:bob@127.0.0.1:{bob_port};transport=UDP"
    wait_until(lambda: contacts(b, "bob") == [bob_contact], "bob's binding on b",
               detail=b.process.log_tail)

    bob = Sipp("bob-answers", "uas.xml", tmp_path, port=bob_port, timeout_s=15,
               trace_messages=True).start()
    bob.wait_listening()
    try:
        run_ok(sipp_phone(b, tmp_path, "caller.xml", "alice", "alicesecret", free_port(),
                          "-key", "callee", "bob"), b)
        assert bob.wait().ok
    finally:
        bob.kill()
    invite = bob.result.received("INVITE")[0]
    assert invite.first_line.startswith(f"INVITE {bob_contact}")
    assert b.address in invite.headers("Via")[0]  # it came through b

    # bob unregisters through a: b answers the next call with 404
    phone = Phone(a, "bob", "bobsecret")
    try:
        reply = phone.register(contacts=(f"<{bob_contact}>",), expires=0)
        assert reply.startswith("SIP/2.0 200") and "Contact:" not in reply, reply
    finally:
        phone.close()
    wait_until(lambda: not contacts(b, "bob"), "the de-registration on b")
    assert call_through(b) == "SIP/2.0 404 Not Found"


def test_kamcli_ul_on_either_router_changes_the_shared_table(
        routers: Pair) -> None:
    a, b = routers
    a.kamcli_ok("ul", "add", "carol", "sip:carol@127.0.0.1:5999")
    wait_until(lambda: contacts(b, "carol") == ["sip:carol@127.0.0.1:5999"], "carol on b")
    b.kamcli_ok("ul", "rm", "carol")
    wait_until(lambda: not contacts(a, "carol"), "carol gone from a")
    stats = a.kamcli_ok("stats", "usrloc:")
    assert stats["usrloc:location-redis_errors"] == 0
    assert stats["usrloc:location-redis_resyncs"] >= 1


def test_registrations_work_while_redis_is_away_and_are_shared_after(
        routers: Pair, redis_server: RedisServer) -> None:
    a, b = routers
    redis_server.stop()
    wait_until(lambda: "Redis connection lost" in a.process.log_tail(), "a notices")
    phone = Phone(a, "bob", "bobsecret")
    try:
        assert phone.register(contacts=("<sip:bob@127.0.0.1:5998>",)).startswith(
            "SIP/2.0 200")
    finally:
        phone.close()
    assert contacts(a, "bob") == ["sip:bob@127.0.0.1:5998"]  # a serves it meanwhile
    assert a.kamcli_ok("stats", "usrloc:")["usrloc:location-redis_errors"] >= 1
    redis_server.start()
    wait_until(lambda: contacts(b, "bob") == ["sip:bob@127.0.0.1:5998"],
               "the binding reaches b once Redis is back", timeout=30)


def test_a_ban_set_through_node_a_holds_on_node_b(nodes: Pair) -> None:
    a, b = nodes
    a.kamcli_ok("htable", "sets", "bans", "127.0.0.1", "testing")  # our phones' address
    wait_until(lambda: b.kamcli("htable", "get", "bans", "127.0.0.1", http=True).exit_code == 0,
               "the ban on b (asked over its HTTP RPC)")
    phone = Phone(b, "bob", "bobsecret")
    try:
        assert phone.request().startswith("SIP/2.0 403 Forbidden")
        b.kamcli_ok("htable", "rm", "bans", "127.0.0.1")
        wait_until(lambda: a.kamcli("htable", "get", "bans", "127.0.0.1").exit_code == 1,
                   "the ban lifted on a")
        assert Phone(a, "bob", "bobsecret").register().startswith("SIP/2.0 200")
    finally:
        phone.close()
