"""Redis-backed tables: two nodes (module instances on stand-in routers) sharing a real
redis-server. Each node serves reads from its local copy; these tests wait (bounded) for
changes to arrive, they do not time them."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import trio

from support.redis import RedisServer
from support.wait import await_until


from .conftest import Htable


def table_config(server: RedisServer, **extra: Any) -> dict[str, Any]:
    return {"name": "shared", "backend": "redis", "redis_url": server.url, "initval": 0,
            "redis_sync_timeout": 2.0, **extra}


@asynccontextmanager
async def nodes(tmp_path: Path, server: RedisServer, count: int = 2,
                **extra: Any) -> AsyncIterator[list[Htable]]:
    async with trio.open_nursery() as nursery:
        started = []
        for i in range(count):
            node = Htable(tmp_path / f"node{i}", table_config(server, **extra),
                          clock=time.monotonic)
            await node.module.start(nursery)
            started.append(node)
        yield started
        nursery.cancel_scope.cancel()


def link(node: Htable) -> Any:
    return node.module.links["shared"]


def stat(node: Htable, name: str) -> int:
    return node.router.stats.get("htable", f"shared-{name}").value


async def test_writes_deletes_and_expiry_reach_the_other_node(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        assert await a.rpc("htable.sets", "shared", "10.0.0.1", "banned") == (
            "Ok. Key set to new value.")
        await await_until(lambda: b.api.get("shared", "10.0.0.1") == "banned", "set on b")
        a.api.set("shared", "15", 15)
        await await_until(lambda: b.api.get("shared", "15") == 15, "int stays int")
        b.api.delete("shared", "10.0.0.1")
        await await_until(lambda: not a.api.has("shared", "10.0.0.1"), "delete on a")
        a.api.set("shared", "short", "lived", expire=0.3)
        await await_until(lambda: b.api.has("shared", "short"), "short-lived item on b")
        assert 0 < b.api.expire_left("shared", "short") <= 1
        await await_until(lambda: not b.api.has("shared", "short"), "expired on b")
        assert not a.api.has("shared", "short")
        async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as r:
            assert await r.get("{kamrouter:htable:shared}:15") == "15"
            assert await r.exists(["{kamrouter:htable:shared}:short"]) == 0  # Redis TTL


async def test_counters_are_atomic_across_nodes(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        for _ in range(50):
            a.api.inc("shared", "calls")
            b.api.inc("shared", "calls")
            await trio.sleep(0)
        await await_until(lambda: a.api.get("shared", "calls") == 100
                         and b.api.get("shared", "calls") == 100, "both see 100")
        b.api.set("shared", "name", "text")
        await await_until(lambda: a.api.has("shared", "name"), "string on a")
        assert a.api.inc("shared", "name") is None  # strings are not counters, here or in Redis


async def test_autoexpire_and_updateexpire_rules_hold_in_redis(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server, autoexpire=100, updateexpire=False) as (a, b):
        a.api.set("shared", "k", 1, expire=50)
        await await_until(lambda: b.api.has("shared", "k"), "k on b")
        b.api.set("shared", "k", 2)  # updateexpire=false: the deadline stays
        await await_until(lambda: a.api.get("shared", "k") == 2, "update on a")
        async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as r:
            assert 0 < await r.pttl("{kamrouter:htable:shared}:k") <= 50000
        assert a.api.expire_left("shared", "k") <= 50


async def test_deletes_by_pattern_and_flush_reach_the_other_node(
        tmp_path: Path, redis_server: RedisServer) -> None:  # Kamailio #2573
    async with nodes(tmp_path, redis_server) as (a, b):
        for i in range(20):
            a.api.set("shared", f"k{i}", i)
        await await_until(lambda: b.api.count_name("shared", "**") == 20, "20 items on b")
        assert a.api.delete_name("shared", "%~k1") == 11  # k1, k10..k19
        assert a.api.delete_value("shared", "eq5") == 1
        await await_until(lambda: b.api.count_name("shared", "**") == 8, "8 left on b")
        assert await b.rpc("htable.flush", "shared") == "Ok. Htable flushed."
        await await_until(lambda: a.api.count_name("shared", "**") == 0, "flushed on a")


async def test_a_starting_node_syncs_the_whole_table_before_serving(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server, count=1) as (a,):
        for i in range(1200):  # more than one SCAN/pipeline batch
            a.api.set("shared", f"k{i}", f"v{i}")
        a.api.set("shared", "n", 5, expire=60)
        await await_until(lambda: not link(a).queue, "every write in Redis")
        async with nodes(tmp_path / "late", redis_server, count=1) as (late,):
            assert late.api.count_name("shared", "**") == 1201  # no waiting: start() synced
            assert late.api.get("shared", "k1199") == "v1199"
            assert 55 < late.api.expire_left("shared", "n") <= 60
            assert await late.rpc("htable.reload", "shared") == "Ok. Htable reloaded."
            assert stat(late, "redis_resyncs") == 2


async def test_redis_away_then_back(tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        a.api.set("shared", "before", "outage")
        await await_until(lambda: b.api.has("shared", "before"), "before on b")
        redis_server.stop()
        await await_until(lambda: not link(a).connected and not link(b).connected,
                         "both notice the loss")
        assert b.api.get("shared", "before") == "outage"  # the last copy keeps serving
        a.api.set("shared", "during", "queued")  # local at once, Redis later
        assert a.api.get("shared", "during") == "queued" and len(link(a).queue) == 1
        redis_server.start()
        await await_until(lambda: b.api.get("shared", "during") == "queued",
                         "the write made during the outage reaches b")
        assert stat(a, "redis_errors") >= 1 and stat(b, "redis_resyncs") >= 2
        b.api.delete("shared", "before")
        await await_until(lambda: not a.api.has("shared", "before"), "delete after the return")


async def test_a_redis_that_lost_its_scripts_gets_them_again(
        tmp_path: Path, redis_server: RedisServer) -> None:
    # The script is loaded once per connection and called by its SHA (one round trip per
    # batch); SCRIPT FLUSH (or a failover to a replica without it) answers NOSCRIPT: the
    # link reconnects, loads it again and sends the write anew.
    async with nodes(tmp_path, redis_server) as (a, b):
        a.api.set("shared", "before", 1)
        await await_until(lambda: b.api.get("shared", "before") == 1, "before on b")
        async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as r:
            await r.script_flush()
        a.api.set("shared", "after", 2)
        await await_until(lambda: b.api.get("shared", "after") == 2, "after the flush, on b")
        assert stat(a, "redis_errors") == 1 and stat(a, "redis_dropped") == 0


async def test_a_full_queue_drops_writes_and_reads_the_table_again(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server, count=1, redis_queue=3) as (a,):
        redis_server.stop()
        await await_until(lambda: not link(a).connected, "loss noticed")
        for i in range(5):
            a.api.set("shared", f"k{i}", i)
        assert stat(a, "redis_dropped") == 2
        redis_server.start()
        # Redis is the source of truth: the dropped writes are gone, the queued ones are in
        await await_until(lambda: link(a).connected and stat(a, "redis_resyncs") >= 2
                         and not link(a).queue, "resynced after the drop")
        assert sorted(k for k, _ in a.api.items("shared")) == ["k0", "k1", "k2"]


async def test_writes_still_queued_at_shutdown_are_handed_to_redis(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server, count=1) as (a,):
        pass
    a.api.set("shared", "late", "write")  # the link task is gone: only the queue has it
    assert len(link(a).queue) == 1
    await a.module.stop()
    async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as r:
        assert await r.get("{kamrouter:htable:shared}:late") == "s:write"
