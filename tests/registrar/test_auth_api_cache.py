"""[auth] credentials = "api" in process, on a fake clock: the HA1 cache (TTL, negative TTL,
bounds against random usernames, stale values), the answers accepted, fetch_credentials
(cached hits need no wait; one query per user at a time) and the config checks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from kamrouter.config import build_section
from kamrouter.core.settings import Settings
from kamrouter.modules.api.controllers import ControllerFailure
from kamrouter.modules.auth.api import AuthResult
from kamrouter.modules.auth.apisource import LookupFailed, subscriber_from
from kamrouter.modules.auth.cache import Ha1Cache
from kamrouter.modules.auth.config import AuthConfig
from kamrouter.modules.auth.module import AuthModule
from kamrouter.modules.auth.subscribers import Subscriber

from support.doubles import StandInRouter

from .test_pv_auth_check import REALM, register

ALICE = Subscriber.with_password("alice", REALM, "alicesecret")


def test_found_and_unknown_users_expire_after_their_ttls() -> None:
    cache = Ha1Cache(ttl=300, negative_ttl=30, size=10, negative_size=10)
    cache.put(("alice", REALM), ALICE, now=1000)
    cache.put(("mallory", REALM), None, now=1000)
    assert cache.get(("alice", REALM), 1029).subscriber == ALICE  # type: ignore[union-attr]
    assert cache.get(("mallory", REALM), 1029).subscriber is None  # type: ignore[union-attr]
    assert cache.get(("mallory", REALM), 1030) is None
    assert cache.get(("alice", REALM), 1299) is not None
    assert cache.get(("alice", REALM), 1300) is None
    # an expired found user may still serve as a stale value, within the allowance only
    assert cache.stale(("alice", REALM), 1300, allowance=60) == ALICE
    assert cache.stale(("alice", REALM), 1360, allowance=60) is None
    assert cache.stale(("mallory", REALM), 1000, allowance=60) is None


def test_random_usernames_never_evict_found_users_and_memory_is_bounded() -> None:
    cache = Ha1Cache(ttl=300, negative_ttl=30, size=3, negative_size=100)
    for user in ("alice", "bob", "carol"):
        cache.put((user, REALM), Subscriber.with_password(user, REALM, "x"), now=0)
    for n in range(10_000):
        cache.put((f"random{n}", REALM), None, now=0)
    assert len(cache) == 3 + 100
    assert all(cache.get((user, REALM), 1) for user in ("alice", "bob", "carol"))
    cache.put(("dave", REALM), Subscriber.with_password("dave", REALM, "x"), now=0)
    assert cache.get(("alice", REALM), 1) is None  # the oldest found user made room
    cache.put(("bob", REALM), None, now=0)  # bob was removed: now unknown, not found
    assert cache.get(("bob", REALM), 1).subscriber is None  # type: ignore[union-attr]
    assert cache.flush(("bob", REALM)) == 1 and cache.flush() == 2 + 99


def test_only_ha1_values_are_accepted() -> None:
    key = ("alice", REALM)
    both = subscriber_from({"ha1": ALICE.ha1.upper(), "ha1_sha256": ALICE.ha1_sha256}, key)
    assert both == Subscriber("alice", REALM, ALICE.ha1, "", ALICE.ha1_sha256)
    assert subscriber_from({"ha1_sha256": ALICE.ha1_sha256}, key).ha1_for("MD5") == ""  # type: ignore[union-attr]
    assert subscriber_from({}, key) is None
    assert subscriber_from({"ha1": None, "ha1_sha256": ""}, key) is None
    for bad in ({"password": "alicesecret"}, {"ha1": "alicesecret"}, {"ha1": ALICE.ha1_sha256},
                {"ha1": 12345}, {"ha1_sha256": ALICE.ha1}):
        with pytest.raises(ControllerFailure) as failure:
            subscriber_from(bad, key)
        assert failure.value.severity == "answered" and "alicesecret" not in str(failure.value)


def test_config_problems_name_their_keys() -> None:
    problems: list[str] = []
    build_section(AuthConfig, {"credentials": "api", "api_on_error": "dispatcher 1",
                               "api_negative_ttl": -1, "api_timeout": 0}, "auth", problems)
    assert problems == [
        "auth.api_url: credentials = 'api' needs an http:// or https:// URL, got ''",
        "auth.api_on_error: expected 'reply <300-699> [reason]', got 'dispatcher 1'",
        "auth.api_timeout: must be between 0.01 and 300 s, got 0",
        "auth.api_negative_ttl: must be between 0 and 86400 s, got -1"]


def stats_of(router: StandInRouter) -> dict[str, int | float]:
    return {f"{s.group}:{s.name}": s.value for s in router.stats.select("auth:")}


class CountingController:
    """Answers like the routing API would, counting the questions (or fails)."""

    target = "http://127.0.0.1:9/ha1"

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []
        self.failing = False

    async def ask(self, msg: Any, event: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.asked.append(event)
        await trio.sleep(0)
        if self.failing:
            raise ControllerFailure("unavailable", "connection refused", "down")
        if event["username"] == "alice":
            return {"ha1": ALICE.ha1, "ha1_sha256": ALICE.ha1_sha256}
        return {}


def api_module(tmp_path: Path, **config: Any) -> tuple[AuthModule, StandInRouter,
                                                     CountingController]:
    router = StandInRouter(Settings(base_dir=tmp_path))
    router.replies = []  # type: ignore[attr-defined]
    router.send_reply = lambda msg, code, reason=None, headers=(): (  # type: ignore[attr-defined]
        router.replies.append((code, reason)) or True)  # type: ignore[attr-defined]
    module = AuthModule(router, AuthConfig(credentials="api", api_url="http://127.0.0.1:9/",
                                           **config))
    controller = CountingController()
    assert module.api_source is not None
    module.api_source.controller = controller
    return module, router, controller


def test_fetch_then_cached_hits_need_no_wait_until_the_ttl(tmp_path: Path) -> None:
    module, router, controller = api_module(tmp_path, api_cache_ttl=60)
    api = module.api()

    async def scenario() -> None:
        first = register(api, "alicesecret", 1)
        pending = api.fetch_credentials(first, REALM)
        assert pending is not None and await pending
        assert api.auth_check(first, REALM) is AuthResult.AUTHENTICATED
        second = register(api, "alicesecret", 2)
        assert api.fetch_credentials(second, REALM) is None  # cached: at once
        assert api.auth_check(second, REALM) is AuthResult.AUTHENTICATED
        wrong = register(api, "guess", 3)
        assert api.fetch_credentials(wrong, REALM) is None
        assert api.auth_check(wrong, REALM) is AuthResult.INVALID_PASSWORD
        assert len(controller.asked) == 1
        router.advance(60)  # type: ignore[arg-type]
        third = register(api, "alicesecret", 4)
        pending = api.fetch_credentials(third, REALM)
        assert pending is not None and await pending
        assert api.auth_check(third, REALM) is AuthResult.AUTHENTICATED
        assert controller.asked == [{"username": "alice", "realm": REALM}] * 2

    trio.run(scenario)
    stats = stats_of(router)
    assert stats["auth:api_queries"] == 2 and stats["auth:api_cache_hits"] == 2
    assert stats["auth:api_cache_misses"] == 2


def test_one_query_per_user_at_a_time_and_the_failure_answer(tmp_path: Path) -> None:
    module, router, controller = api_module(tmp_path, api_on_error="reply 500 API down")
    api = module.api()
    results: list[bool] = []

    async def scenario() -> None:
        messages = [register(api, "alicesecret", n) for n in range(1, 4)]
        pending = [api.fetch_credentials(msg, REALM) for msg in messages]
        async with trio.open_nursery() as nursery:
            for waiting in pending:
                assert waiting is not None

                async def wait(waiting: Any = waiting) -> None:
                    results.append(await waiting)
                nursery.start_soon(wait)
        assert len(controller.asked) == 1 and results == [True] * 3
        module.api_source.cache.flush()  # type: ignore[union-attr]
        controller.failing = True
        msg = register(api, "alicesecret", 9)
        pending_failure = api.fetch_credentials(msg, REALM)
        assert pending_failure is not None and not await pending_failure
        # a script that did not fetch (or a failed fetch): auth_check cannot tell
        assert api.auth_check(msg, REALM) is AuthResult.ERROR

    trio.run(scenario)
    assert router.replies == [(500, "API down")]  # type: ignore[attr-defined]
    assert module.api_source.breaker.state == "open"  # type: ignore[union-attr]


def test_a_stale_ha1_serves_while_the_api_fails_when_allowed(tmp_path: Path) -> None:
    module, router, controller = api_module(tmp_path, api_cache_ttl=60, api_stale_ttl=600)
    api = module.api()

    async def scenario() -> None:
        pending = api.fetch_credentials(register(api, "alicesecret", 1), REALM)
        assert pending is not None and await pending
        router.advance(120)  # type: ignore[arg-type]
        controller.failing = True
        msg = register(api, "alicesecret", 2)
        pending = api.fetch_credentials(msg, REALM)
        assert pending is not None and await pending
        assert api.auth_check(msg, REALM) is AuthResult.AUTHENTICATED
        with pytest.raises(LookupFailed):  # the circuit is open now, the value too old
            router.advance(600)  # type: ignore[arg-type]
            await module.api_source.lookup(("alice", REALM))  # type: ignore[union-attr]

    trio.run(scenario)
    assert stats_of(router)["auth:api_stale_served"] == 1


def test_unknown_user_is_cached_for_the_negative_ttl(tmp_path: Path) -> None:
    module, router, controller = api_module(tmp_path, api_negative_ttl=10)
    api = module.api()

    async def scenario() -> None:
        msg = register(api, "alicesecret", 1)
        module.api_source.cache.put(("alice", REALM), None, router.clock())  # type: ignore[union-attr]
        assert api.fetch_credentials(msg, REALM) is None
        assert api.auth_check(msg, REALM) is AuthResult.USER_UNKNOWN
        router.advance(10)  # type: ignore[arg-type]
        pending = api.fetch_credentials(register(api, "alicesecret", 2), REALM)
        assert pending is not None
        pending.close()  # type: ignore[attr-defined]

    trio.run(scenario)
    assert controller.asked == []


def test_overlong_usernames_are_unknown_without_asking(tmp_path: Path) -> None:
    module, router, controller = api_module(tmp_path)
    api = module.api()
    msg = register(api, "alicesecret", 1)
    long_name = "a" * 300
    header = msg.sip.get("Authorization")
    assert header is not None
    msg.sip.set_header("Authorization", header.replace('username="alice"',
                                                       f'username="{long_name}"'))
    assert api.fetch_credentials(msg, REALM) is None
    assert api.auth_check(msg, REALM) is AuthResult.USER_UNKNOWN
    assert controller.asked == [] and len(module.api_source.cache) == 0  # type: ignore[union-attr]
