"""A Redis that comes back without the table (restarted empty) never silently wipes the
nodes' copies: they re-seed it, or refuse to sync until an operator's htable.reload."""
from __future__ import annotations

import shutil
from pathlib import Path

import coredis

from support.redis import RedisServer
from support.wait import await_until

from .test_redis import link, nodes, stat

ITEM = "{kamrouter:htable:shared}:"


def restart_empty(server: RedisServer) -> None:
    """Stop Redis, drop its files (a restart without persistence), start it on its port."""
    server.stop()
    shutil.rmtree(server.workdir)
    server.start()


async def redis_items(server: RedisServer) -> dict[str, str]:
    async with coredis.Redis.from_url(server.url, decode_responses=True) as r:
        names = [name async for name in r.scan_iter(match=ITEM + "*")]
        return {name[len(ITEM):]: await r.get(name) for name in names}


async def test_a_redis_restarted_empty_is_reseeded_from_the_nodes_copy(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        a.api.set("shared", "10.0.0.1", "banned")
        a.api.set("shared", "hits", 3)
        a.api.set("shared", "soon", "gone", expire=3600)
        await await_until(lambda: b.api.get("shared", "soon") == "gone", what="items on b")
        restart_empty(redis_server)
        await await_until(lambda: stat(a, "redis_lost") == 1 and stat(b, "redis_lost") == 1,
                          what="both nodes notice the loss")
        await await_until(lambda: link(a).connected and link(b).connected and not
                          link(a).queue and not link(b).queue, what="both synced again")
        assert await redis_items(redis_server) == {"10.0.0.1": "s:banned", "hits": "3",
                                                   "soon": "s:gone"}
        for node in (a, b):
            assert node.api.get("shared", "hits") == 3
            assert 3500 < node.api.expire_left("shared", "soon") <= 3600
        # And the table goes on working across the nodes.
        b.api.inc("shared", "hits")
        await await_until(lambda: a.api.get("shared", "hits") == 4, what="inc on a")


async def test_refuse_keeps_the_copy_without_syncing_until_htable_reload(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server, count=1, redis_data_loss="refuse") as (a,):
        a.api.set("shared", "10.0.0.1", "banned")
        await await_until(lambda: not link(a).queue, what="the write in Redis")
        restart_empty(redis_server)
        await await_until(lambda: stat(a, "redis_lost") == 1, what="the loss noticed")
        assert not link(a).connected
        assert a.api.get("shared", "10.0.0.1") == "banned"  # still served from the copy
        assert await redis_items(redis_server) == {}
        assert await a.rpc("htable.reload", "shared") == "Ok. Htable reloaded."
        assert link(a).connected and a.api.items("shared") == []  # the operator's choice
        assert stat(a, "redis_lost") == 1  # counted once


async def test_a_flushed_table_is_no_data_loss(tmp_path: Path,
                                               redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        a.api.set("shared", "k", "v")
        await await_until(lambda: b.api.has("shared", "k"), what="k on b")
        a.api.flush("shared")
        await await_until(lambda: not b.api.has("shared", "k"), what="the flush on b")
        redis_server.stop()
        redis_server.start()  # with its files: the epoch is still there
        await await_until(lambda: stat(b, "redis_resyncs") >= 2, what="b synced again")
        assert stat(a, "redis_lost") == stat(b, "redis_lost") == 0
        assert await redis_items(redis_server) == {} and b.api.items("shared") == []
