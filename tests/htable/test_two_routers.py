"""Two router processes sharing a Redis-backed ban list through a real redis-server.

A change made with kamcli on one router is read by the other's routing script (the
ban-list example, driven by sipp); deletes and expiry likewise; a restarted router syncs the
table before it is ready; while Redis is away both keep serving their copies and catch up
when it returns. Waits are bounded polls of the other router's copy, never timings.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import free_port
from support.redis import RedisServer
from support.sipp import Sipp
from support.wait import wait_until


from .conftest import RouterUnderTest
from .test_router import EXAMPLE, SCENARIOS, sipp_call

BANNED = "127.0.0.1"  # sipp calls from loopback: this key decides their fate


def tables(redis_url: str) -> str:
    return f"""\
[[htable]]
name = "bans"
backend = "redis"
redis_url = "{redis_url}"

[[htable]]
name = "flood"
autoexpire = 10
updateexpire = false
initval = 0
"""


def has(router: RouterUnderTest, key: str) -> bool:
    return router.kamcli("htable", "get", "bans", key).exit_code == 0


@pytest.fixture
def routers(tmp_path: Path, redis_server: RedisServer
            ) -> Iterator[tuple[RouterUnderTest, RouterUnderTest]]:
    pair = tuple(RouterUnderTest(tmp_path / name, tables=tables(redis_server.url),
                                 script=EXAMPLE.read_text()) for name in ("a", "b"))
    try:
        for router in pair:
            router.start()
        yield pair  # type: ignore[misc]
    finally:
        for router in pair:
            router.stop()


def test_ban_on_one_router_is_enforced_by_the_other(
        routers: tuple[RouterUnderTest, RouterUnderTest], tmp_path: Path) -> None:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; `make test` installs it)")
    a, b = routers
    workdir = tmp_path / "sipp"
    uas = Sipp("uas", "uas.xml", workdir, port=free_port(), calls=2, timeout_s=30).start()
    uas.wait_listening()
    try:
        a.kamcli_ok("htable", "sets", "bans", BANNED, "shared ban")
        wait_until(lambda: has(b, BANNED), "the ban reaches b")
        sipp_call(b, workdir, str(SCENARIOS / "uac_forbidden.xml"), None)

        b.kamcli_ok("htable", "rm", "bans", BANNED)
        wait_until(lambda: not has(a, BANNED), "the unban reaches a")
        sipp_call(a, workdir, "uac.xml", uas)

        a.kamcli_ok("htable", "setxs", "bans", BANNED, "short ban", "1")
        wait_until(lambda: has(b, BANNED), "the short ban reaches b")
        wait_until(lambda: not has(b, BANNED), "the short ban expires on b")
        sipp_call(b, workdir, "uac.xml", uas)
        assert uas.wait().ok
    finally:
        uas.kill()


def test_restart_sync_and_redis_restart(
        routers: tuple[RouterUnderTest, RouterUnderTest], redis_server: RedisServer) -> None:
    a, b = routers
    a.kamcli_ok("htable", "sets", "bans", "192.0.2.1", "before restart")
    wait_until(lambda: has(b, "192.0.2.1"), "first ban on b")
    b.stop()
    a.kamcli_ok("htable", "seti", "bans", "192.0.2.2", "2")
    b.start()  # ready means synced: no waiting from here
    assert {r["key"] for r in b.kamcli_ok("htable", "dump", "bans")} == {"192.0.2.1",
                                                                         "192.0.2.2"}

    redis_server.stop()
    wait_until(lambda: "Redis connection lost" in b.process.log_tail(), "b notices")
    assert has(b, "192.0.2.1")  # the last copy keeps serving
    a.kamcli_ok("htable", "sets", "bans", "192.0.2.3", "during the outage")
    redis_server.start()
    wait_until(lambda: has(b, "192.0.2.3"), "the outage write reaches b after Redis returns")
    stats = b.kamcli_ok("stats", "htable:")
    assert stats["htable:bans-redis_errors"] >= 1 and stats["htable:bans-redis_resyncs"] >= 2
