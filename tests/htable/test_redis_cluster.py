"""A Redis-backed table on a real three-node Redis Cluster (redis+cluster:// URL): sync,
writes, expiry and flush reach the other node, as on a single server."""
from __future__ import annotations

from pathlib import Path

from support.redis import ClusterServer
from support.wait import await_until

from .test_redis import nodes

async def test_shared_table_on_a_cluster(tmp_path: Path, cluster_url: str) -> None:
    async with nodes(tmp_path, ClusterServer(cluster_url)) as (a, b):  # type: ignore[arg-type]
        a.api.set("shared", "10.0.0.1", "banned")
        a.api.inc("shared", "calls")
        b.api.inc("shared", "calls")
        await await_until(lambda: b.api.get("shared", "10.0.0.1") == "banned"
                         and a.api.get("shared", "calls") == b.api.get("shared", "calls") == 2,
                         "writes and counters on both")
        async with nodes(tmp_path / "late", ClusterServer(cluster_url), count=1) as (late,):
            assert late.api.get("shared", "10.0.0.1") == "banned"  # synced before serving
            assert late.api.get("shared", "calls") == 2
        a.api.set("shared", "short", 1, expire=0.3)
        await await_until(lambda: b.api.has("shared", "short"), "short-lived item on b")
        await await_until(lambda: not b.api.has("shared", "short"), "expired on b")
        b.api.flush("shared")
        await await_until(lambda: a.api.items("shared") == [], "flushed on a")
