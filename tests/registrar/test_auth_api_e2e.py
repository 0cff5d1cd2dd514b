"""[auth] credentials = "api" through the shipped registrar example: a real HTTP (and
JSON-RPC) service on 127.0.0.1 answers HA1 values; sipp phones register with [authentication]
(200 with the right password, not with a wrong one), the second registration is served from
the cache (the service counts its queries), unknown users are cached too, kamcli shows and
flushes the cache, and with the service down REGISTER is answered api_on_error (503)."""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.jsonpeer import JsonPeer
from support.ports import free_port

from .conftest import DOMAIN, Phone, RegistrarRouter
from .test_calls import sipp_phone

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
PASSWORDS = {"alice": "alicesecret", "bob": "bobsecret"}


def ha1_of(user: str, realm: str, name: str) -> str:
    return hashlib.new(name, f"{user}:{realm}:{PASSWORDS[user]}".encode()).hexdigest()


def credentials(request: dict[str, Any]) -> dict[str, Any]:
    """The routing API's credentials endpoint: {"username", "realm"} (plain, or as JSON-RPC
    params) → {"ha1", "ha1_sha256"}, {} for an unknown user."""
    params = request.get("params", request)
    user, realm = params["username"], params["realm"]
    answer = ({"ha1": ha1_of(user, realm, "md5"), "ha1_sha256": ha1_of(user, realm, "sha256")}
              if user in PASSWORDS else {})
    return {"result": answer} if "jsonrpc" in request else answer


def asked(service: JsonPeer) -> list[tuple[str, str]]:
    return [(e.get("params", e)["username"], e.get("params", e)["realm"])
            for e in service.events]


@pytest.fixture
def service() -> Iterator[JsonPeer]:
    server = JsonPeer(credentials, free_port()).serve_in_thread()
    try:
        yield server
    finally:
        server.close()


def api_router(tmp_path: Path, service: JsonPeer, **auth: object) -> RegistrarRouter:
    return RegistrarRouter(tmp_path / "router", auth={
        "credentials": "api", "api_url": service.url, "api_timeout": 5.0, **auth}).start()


def stats(router: RegistrarRouter) -> dict[str, int]:
    return router.kamcli_ok("stats", "auth:")  # type: ignore[no-any-return]


def test_sipp_registers_with_ha1_from_the_api_then_from_the_cache(
        tmp_path: Path, service: JsonPeer) -> None:
    router = api_router(tmp_path, service)
    try:
        for _ in range(2):
            phone = sipp_phone(router, tmp_path, "register.xml", "alice", "alicesecret",
                               free_port())
            result = phone.start().wait()
            assert result.complete, result.report() + router.process.log_tail()
        assert asked(service) == [("alice", DOMAIN)]  # the second one came from the cache
        wrong = sipp_phone(router, tmp_path, "register.xml", "alice", "guess", free_port())
        refused = wrong.start().wait()
        assert not refused.ok and refused.received(401) and refused.received(403)
        mallory = Phone(router, "mallory", "whatever")
        for _ in range(2):
            assert mallory.register().startswith("SIP/2.0 403")
        assert asked(service) == [("alice", DOMAIN), ("mallory", DOMAIN)]
        counters = stats(router)
        assert counters["auth:api_queries"] == 2 and counters["auth:api_cache_hits"] == 3
        assert counters["auth:api_cache_misses"] == 2
        assert counters["auth:authenticated"] == 2 and counters["auth:invalid_password"] == 1
        assert counters["auth:user_unknown"] == 2

        rows = router.kamcli_ok("subscriber", "cache")
        assert sorted((r["username"], r["found"], r["algorithms"]) for r in rows) == [
            ("alice", True, "MD5,SHA-256"), ("mallory", False, "")]
        assert all(0 < r["expires_in"] <= 300 for r in rows)
        assert "ha1" not in json.dumps(rows) and ha1_of("alice", DOMAIN, "md5") \
            not in router.kamcli("subscriber", "cache", output="table").output
        router.kamcli_ok("subscriber", "cache-flush", f"mallory@{DOMAIN}")
        assert [r["username"] for r in router.kamcli_ok("subscriber", "cache")] == ["alice"]
        router.kamcli_ok("subscriber", "cache-flush")
        assert router.kamcli_ok("subscriber", "cache") == []

        service.close()  # the API goes down: REGISTER gets api_on_error, nothing cached
        alice = Phone(router, "alice", "alicesecret")
        assert alice.register().startswith("SIP/2.0 503 Service Unavailable")
        status = router.kamcli_ok("rpc", "auth.api_status")
        assert status["state"] == "open" and "unavailable" in status["last_error"]
        assert stats(router)["auth:api_errors"] == 1
        assert alice.register().startswith("SIP/2.0 503")  # circuit open: not even asked
        assert stats(router)["auth:api_short_circuits"] == 1
        assert ha1_of("alice", DOMAIN, "md5") not in router.process.log_tail()
    finally:
        router.stop()


def test_jsonrpc_transport_and_sha256(tmp_path: Path, service: JsonPeer) -> None:
    router = api_router(tmp_path, service, api_transport="jsonrpc")
    try:
        bob = Phone(router, "bob", "bobsecret")
        assert bob.register("SHA-256").startswith("SIP/2.0 200")
        assert bob.register("MD5").startswith("SIP/2.0 200")
        assert asked(service) == [("bob", DOMAIN)]
    finally:
        router.stop()
