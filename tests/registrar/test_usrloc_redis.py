"""usrloc db_mode = "redis": two (or three) module instances on stand-in routers sharing a
real redis-server. Each node serves lookups from its own copy; the tests wait (bounded) for
changes to arrive, they never time them. The usrloc clock is a fake wall clock (bindings
carry absolute expiry times, which Redis's key expiry compares with its own clock)."""
from __future__ import annotations

import math
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import coredis
import trio

from kamrouter.config import build_section
from kamrouter.core.settings import Settings
from kamrouter.modules.usrloc import UsrlocModule
from kamrouter.modules.usrloc.config import UsrlocConfig
from kamrouter.modules.usrloc.location import Binding, Location
from kamrouter.modules.usrloc.redis_store import RedisLocation, decode, encode
from support.doubles import FakeClock, RpcClient, StandInRouter
from support.redis import ClusterServer, RedisServer
from support.wait import await_until

KEY = "{kamrouter:usrloc:location}:"


class Node:
    """One router's usrloc module, its RPC methods and its wall clock."""

    def __init__(self, tmp_path: Path, clock: FakeClock, **config: Any) -> None:
        self.clock = clock
        self.router = StandInRouter(Settings(base_dir=tmp_path), clock=time.monotonic)
        problems: list[str] = []
        cfg = build_section(UsrlocConfig, {"db_mode": "redis", "redis_sync_timeout": 5.0,
                                           **config}, "usrloc", problems)
        assert not problems, problems
        self.module = UsrlocModule(self.router, cfg, clock)
        self.table: Location = self.module.table("location")
        self.rpc = RpcClient(self.router.rpc)

    @property
    def link(self) -> RedisLocation:
        return self.module.links["location"]

    def contacts(self, aor: str) -> list[str]:
        return [b.contact for b in self.table.bindings(aor)]

    def stat(self, name: str) -> int:
        return self.router.stats.get("usrloc", f"location-{name}").value


async def put_and_share(a: Node, b: Node, aor: str, *bindings: Binding) -> None:
    """Save ``bindings`` on node a; return once node b has them all."""
    for binding in bindings:
        a.table.put(aor, binding)
    await await_until(lambda: len(b.contacts(aor)) == len(a.contacts(aor)), f"{aor} on b")


@asynccontextmanager
async def nodes(tmp_path: Path, server: RedisServer, count: int = 2,
                clock: FakeClock | None = None) -> AsyncIterator[list[Node]]:
    clock = clock or FakeClock(time.time())
    async with trio.open_nursery() as nursery:
        started = []
        for i in range(count):
            node = Node(tmp_path / f"node{i}", clock, redis_url=server.url)
            await node.module.start(nursery)
            assert node.link.synced.is_set()
            started.append(node)
        yield started
        for node in started:
            await node.module.stop()
        nursery.cancel_scope.cancel()


async def redis_hash(server: RedisServer, aor: str) -> dict[str, str]:
    async with coredis.Redis.from_url(server.url, decode_responses=True) as r:
        return dict(await r.hgetall(KEY + aor))


async def expires_at_ms(server: RedisServer, aor: str) -> int:
    """PEXPIRETIME of the AoR's hash, in Unix milliseconds."""
    async with coredis.Redis.from_url(server.url, decode_responses=True) as r:
        return round((await r.pexpiretime(KEY + aor)).timestamp() * 1000)


async def redis_keys(server: RedisServer) -> list[str]:
    async with coredis.Redis.from_url(server.url, decode_responses=True) as r:
        return [name async for name in r.scan_iter(match=KEY + "*")]


async def test_bindings_saved_on_one_node_are_found_on_the_other(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        now = a.clock()
        await put_and_share(a, b, "alice", Binding(
            "sip:alice@192.0.2.1:5070", now + 600, q=500, call_id="c1", cseq=1,
            path="<sip:edge;lr>", user_agent="phone"),
            Binding("sip:alice@192.0.2.2:5070", now + 300, q=1000))
        assert b.contacts("alice") == ["sip:alice@192.0.2.2:5070",
                                       "sip:alice@192.0.2.1:5070"]  # q order kept
        remote = b.table.bindings("alice")[1]
        assert (remote.path, remote.user_agent, remote.call_id, remote.cseq) == (
            "<sip:edge;lr>", "phone", "c1", 1)
        assert remote.ruid == a.table.bindings("alice")[1].ruid

        stored = await redis_hash(redis_server, "alice")
        assert sorted(stored) == sorted(x.ruid for x in a.table.bindings("alice"))
        assert await expires_at_ms(redis_server, "alice") == math.ceil((now + 600) * 1000)

        # A de-registration on b removes the binding everywhere, Redis included.
        b.table.delete("alice", b.table.bindings("alice")[1])
        await await_until(lambda: a.contacts("alice") == ["sip:alice@192.0.2.2:5070"],
                          "the delete on a")
        assert len(await redis_hash(redis_server, "alice")) == 1
        # the key now lives as long as its remaining binding
        assert await expires_at_ms(redis_server, "alice") == math.ceil((now + 300) * 1000)


async def test_ul_rpc_on_either_node_shows_and_changes_the_shared_table(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        assert await a.rpc("ul.add", "location", "bob", "sip:bob@192.0.2.7", 120, 0.5) is None
        await await_until(lambda: b.contacts("bob"), "ul.add on b")
        found = await b.rpc("ul.lookup", "location", "bob")
        assert [c["Contact"]["Address"] for c in found["Contacts"]] == ["sip:bob@192.0.2.7"]
        dump = await b.rpc("ul.dump")
        assert [x["Info"]["AoR"] for x in dump["Domains"][0]["Domain"]["AoRs"]] == ["bob"]
        assert await b.rpc("ul.rm", "location", "bob") is None
        await await_until(lambda: not a.contacts("bob"), "ul.rm on a")
        assert await a.rpc("ul.lookup", "location", "bob") == ("error", 404, "AOR not found")

        for i in range(20):
            await a.rpc("ul.add", "location", f"user{i}", f"sip:u{i}@192.0.2.8", 120, -1)
        await await_until(lambda: b.table.count_contacts() == 20, "20 AoRs on b")
        assert await b.rpc("ul.flush") is None
        await await_until(lambda: a.table.count_contacts() == 0, "the flush on a")
        await b.link.wait_sent()
        assert await redis_keys(redis_server) == []


async def test_expiry_sweeps_on_every_node_are_harmless(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        now = a.clock()
        await put_and_share(a, b, "carol", Binding("sip:carol@192.0.2.3", now + 5),
                            Binding("sip:carol@192.0.2.4", now + 500))
        a.clock.now += 6
        a.module.sweep()
        b.module.sweep()  # both nodes delete the same binding: idempotent
        assert a.module.expired.value == b.module.expired.value == 1
        await a.link.wait_sent()
        await b.link.wait_sent()
        await await_until(lambda: a.link.pending == b.link.pending == {}, "echoes back")
        assert a.contacts("carol") == b.contacts("carol") == ["sip:carol@192.0.2.4"]
        assert [decode(v).contact for v in (await redis_hash(redis_server, "carol")).values()] \
            == ["sip:carol@192.0.2.4"]
        assert a.stat("redis_errors") == b.stat("redis_errors") == 0


async def test_a_sweep_does_not_remove_a_binding_refreshed_through_another_node(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        now = a.clock()
        await put_and_share(a, b, "dave", Binding("sip:dave@192.0.2.5", now + 60))
        stale = a.table.bindings("dave")[0]
        # b refreshes it (same ruid) while a, not yet told, sweeps its old copy.
        refreshed = Binding(stale.contact, now + 3600, ruid=stale.ruid, cseq=2)
        b.table.put("dave", refreshed, replacing=b.table.bindings("dave")[0])
        await b.link.wait_sent()
        a.link.enqueue(("expire", "dave", stale))
        await a.link.wait_sent()
        await await_until(lambda: not a.link.pending, "a's echo")
        assert [decode(v).cseq for v in (await redis_hash(redis_server, "dave")).values()] == [2]
        assert [x.expires for x in a.table.bindings("dave")] == [now + 3600]


async def test_a_late_node_has_the_table_before_it_serves(
        tmp_path: Path, redis_server: RedisServer) -> None:
    clock = FakeClock(time.time())
    async with nodes(tmp_path, redis_server, count=1, clock=clock) as (a,):
        for i in range(600):
            a.table.put(f"user{i}", Binding(f"sip:u{i}@192.0.2.9:{5000 + i}", clock() + 900))
        a.table.put("gone", Binding("sip:gone@192.0.2.9", clock() + 1))
        await a.link.wait_sent()
        clock.now += 2  # "gone" expired, nobody swept it yet
        async with nodes(tmp_path / "late", redis_server, count=1, clock=clock) as (late,):
            assert late.table.count_contacts() == 600  # no waiting: start() synced
            assert late.contacts("user599") == ["sip:u599@192.0.2.9:5599"]
            assert not late.contacts("gone")


async def test_registrations_go_on_while_redis_is_away_and_reach_redis_after(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        now = a.clock()
        await put_and_share(a, b, "erin", Binding("sip:erin@192.0.2.10", now + 600))
        redis_server.stop()
        await await_until(lambda: a.stat("redis_errors") >= 1, "a notices")
        a.table.put("frank", Binding("sip:frank@192.0.2.11", now + 600))
        assert a.contacts("frank") == ["sip:frank@192.0.2.11"]  # served locally at once
        assert b.contacts("erin")  # b keeps its last copy
        redis_server.start()  # with its data (append-only file)
        await await_until(lambda: b.contacts("frank") and a.link.connected
                          and b.link.connected, "frank reaches b after the outage", timeout=20)
        assert a.stat("redis_resyncs") >= 2 and b.stat("redis_resyncs") >= 2
        assert b.contacts("erin") == ["sip:erin@192.0.2.10"]


async def test_a_redis_restarted_empty_is_reseeded_from_the_copies(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        await put_and_share(a, b, "gina", Binding("sip:gina@192.0.2.12", a.clock() + 600))
        redis_server.stop()
        shutil.rmtree(redis_server.workdir)
        redis_server.start()
        await await_until(lambda: a.stat("redis_lost") == 1 and b.stat("redis_lost") == 1,
                          "both nodes notice the loss", timeout=20)
        await await_until(lambda: a.link.connected and b.link.connected and not a.link.queue
                          and not b.link.queue, "both synced again", timeout=20)
        assert [decode(v).contact for v in (await redis_hash(redis_server, "gina")).values()] \
            == ["sip:gina@192.0.2.12"]
        assert a.contacts("gina") == b.contacts("gina") == ["sip:gina@192.0.2.12"]


async def test_a_table_first_used_after_start_is_shared_too(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with nodes(tmp_path, redis_server) as (a, b):
        name = "other[1]*"  # glob characters in a table name are taken literally by SCAN
        mine, theirs = a.module.table(name), b.module.table(name)
        await await_until(lambda: a.module.links[name].connected
                          and b.module.links[name].connected, "both links up")
        mine.put("hank", Binding("sip:hank@192.0.2.13", a.clock() + 600))
        await await_until(lambda: theirs.bindings("hank"), "hank in b's other table")
        assert not b.contacts("hank")  # not in "location"
        async with nodes(tmp_path / "late", redis_server, count=1) as (late,):
            late_table = late.module.table(name)
            await await_until(lambda: late.module.links[name].connected, "late link up")
            assert [x.contact for x in late_table.bindings("hank")] == ["sip:hank@192.0.2.13"]


async def test_shared_table_on_a_cluster(tmp_path: Path, cluster_url: str) -> None:
    server = ClusterServer(cluster_url)
    async with nodes(tmp_path, server) as (a, b):  # type: ignore[arg-type]
        now = a.clock()
        for i in range(300):  # batches of several ops: one script call each, one slot
            a.table.put(f"user{i}", Binding(f"sip:u{i}@192.0.2.14", now + 600))
        await await_until(lambda: b.table.count_contacts() == 300, "300 bindings on b")
        b.table.delete_aor("user7")
        await await_until(lambda: not a.contacts("user7"), "the delete on a")
        async with nodes(tmp_path / "late", server, count=1) as (late,):  # type: ignore[arg-type]
            assert late.table.count_contacts() == 299  # synced before serving


def test_binding_rows_round_trip_and_malformed_ones_are_refused() -> None:
    binding = Binding("sip:x@192.0.2.1", 1234.5, q=100, call_id="c", cseq=3, ruid="r1",
                      last_modified=1000.0)
    assert decode(encode(binding)).as_row() == binding.as_row()
    for text in ("[]", '{"a": 1}', encode(binding).replace('"c"', "7"), "not json",
                 encode(binding).replace("1234.5", "true")):
        try:
            decode(text)
        except (ValueError, TypeError):
            continue
        raise AssertionError(f"{text!r} was accepted")


def test_config_redis_url_is_required_and_checked() -> None:
    def problems(**raw: Any) -> list[str]:
        found: list[str] = []
        build_section(UsrlocConfig, raw, "usrloc", found)
        return found

    assert problems(db_mode="redis") == [
        'usrloc.redis_url: missing (e.g. "redis://127.0.0.1:6379/0")']
    assert problems(db_mode="redis", redis_url="http://h") == [
        "usrloc.redis_url: 'http://h' must start with one of redis://, rediss://, "
        "redis+cluster://, redis+sentinel://, unix://"]
    assert problems(db_mode="redis", redis_url="redis://h:port/0") == [
        "usrloc.redis_url: 'redis://h:port/0' has a malformed host:port"]
    assert problems(db_mode="redis", redis_url="redis+sentinel://h:26379") == [
        "usrloc.redis_url: 'redis+sentinel://h:26379': expected "
        "redis+sentinel://host:port[,...]/service[/db]"]
    assert problems(db_mode="redis", redis_url="redis+cluster://a:7000,b:7001",
                    redis_prefix="bad prefix*", redis_queue=0) == [
        "usrloc.redis_prefix: 'bad prefix*' may only contain letters, digits, '_', '.', ':', "
        "'-'", "usrloc.redis_queue: must be between 1 and 10000000, got 0"]
    assert problems(redis_url="redis://h/0") == [
        "usrloc.redis_url: only used with db_mode = \"redis\" (db_mode is 'memory')"]
    assert problems(db_mode="redis", redis_url="unix:///run/redis.sock?db=1") == []
