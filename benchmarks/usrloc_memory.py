"""Bytes per registered contact: 100,000 bindings saved through registrar.save() into an
in-memory usrloc table, measured with tracemalloc (Python objects and their strings).

With ``--redis``, the same saves into a table shared through a real redis-server (started
on a free loopback port): Redis's ``used_memory`` per binding, what the link costs each
save() on the event loop, and how fast the queued changes reach Redis.

    .venv/bin/python benchmarks/usrloc_memory.py [--count N] [--redis]
"""
from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from functools import partial
from pathlib import Path

import coredis
import trio

from kamrouter.modules.registrar.config import RegistrarConfig
from kamrouter.modules.registrar.save import Details, save
from kamrouter.modules.usrloc.location import Location
from kamrouter.modules.usrloc.redis_store import RedisLocation
from kamrouter.redis_client import open_client
from kamrouter.sip import Request, parse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.redis import RedisServer  # noqa: E402
from support.loopback_only import install as loopback_only  # noqa: E402

loopback_only()  # the made-up 10.x addresses below are data, never a destination


def register(i: int) -> Request:
    user = f"user{i:06d}"
    text = (f"REGISTER sip:example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:5060;"
            f"branch=z9hG4bK-{i}\r\n"
            f"From: <sip:{user}@example.com>;tag={i}\r\nTo: <sip:{user}@example.com>\r\n"
            f"Call-ID: {i:08x}-4f3e-11ee-be56-0242ac120002@10.0.0.1\r\nCSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{user}@10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:5060;"
            f"transport=udp>\r\nUser-Agent: Yealink SIP-T46U 108.86.0.20\r\n"
            f"Expires: 3600\r\nContent-Length: 0\r\n\r\n")
    msg = parse(text.encode())
    assert isinstance(msg, Request)
    return msg


def save_one(table: Location, i: int, cfg: RegistrarConfig) -> None:
    # Each request is freed after its save(): what stays is what the table keeps.
    save(register(i), table, Details(f"user{i:06d}", received=f"sip:192.0.2.{i & 255}:"
                                     f"{1024 + i % 60000}", socket="udp:203.0.113.1:5060"), cfg)


async def saves_per_second(table: Location, count: int,
                           link: RedisLocation | None) -> tuple[float, float]:
    """``count`` registrations saved on one event loop, letting other tasks (the Redis link)
    run between batches of 100, until every change is in Redis: saves per second, and this
    process's CPU microseconds per save (Redis's own work, on the same cores, excluded)."""
    cfg = RegistrarConfig()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        save_one(table, i, cfg)
        if i % 100 == 99:
            await trio.sleep(0)
    if link is not None:
        await link.wait_sent()
    return (count / (time.perf_counter() - started),
            (time.process_time() - cpu) / count * 1e6)


async def redis_figures(count: int) -> None:
    """Redis memory per binding and what sharing costs the event loop."""
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            async with coredis.Redis.from_url(server.url, decode_responses=True) as redis:
                alone = await saves_per_second(Location("location", time.time), count, None)
                table = Location("location", time.time)
                link = RedisLocation(table, "kamrouter:usrloc", count + 1,
                                     partial(open_client, server.url))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(link.run)
                    await link.synced.wait()
                    before = int((await redis.info("memory"))["used_memory"])
                    shared = await saves_per_second(table, count, link)
                    after = int((await redis.info("memory"))["used_memory"])
                    nursery.cancel_scope.cancel()
        finally:
            server.stop()
    print(f"Redis: {(after - before) / count:.0f} bytes of used_memory per binding "
          f"({count} bindings, one hash per AoR)")
    print(f"registrar save() on one event loop: {alone[0]:.0f}/s in memory, {shared[0]:.0f}/s "
          "shared through Redis (the link sending every change on the same loop, Redis on "
          f"the same cores); this process's CPU per save: {alone[1]:.0f} us in memory, "
          f"{shared[1]:.0f} us shared")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--redis", action="store_true", help="Redis figures (redis-server)")
    args = parser.parse_args()
    count = args.count
    if args.redis:
        if not shutil.which("redis-server"):
            sys.exit("redis-server not installed (Debian package redis-server)")
        trio.run(redis_figures, count)
        return
    table = Location("location", time.time)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cfg = RegistrarConfig()
    for i in range(count):
        save_one(table, i, cfg)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert table.count_contacts() == count
    print(f"{count} bindings: {(after - before) / count:.0f} bytes per registered contact "
          f"(AoR key, binding, contact, Call-ID, received, ruid; User-Agent and socket shared)")


if __name__ == "__main__":
    main()
