"""The resolver against a real DNS server on 127.0.0.1: RFC 3263 targets, the TTL cache,
shared lookups, static names; and the destination blocklist with a fake clock."""
from __future__ import annotations

import random

import pytest
import trio

from kamrouter.dns import Blocklist, Query, Resolver
from kamrouter.net import Endpoint
from support.dnsserver import DnsServer

UDP_TCP = ("udp", "tcp")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server():
    with DnsServer() as dns_server:
        dns_server.set("example.test", "NAPTR", ['10 10 "s" "SIP+D2U" "" _sip._udp.example.test.'])
        dns_server.set("_sip._udp.example.test", "SRV",
                       ["10 60 5070 a.example.test.", "10 40 5080 b.example.test.",
                        "20 0 5090 c.example.test."], ttl=30)
        dns_server.set("a.example.test", "A", ["127.0.0.10"])
        dns_server.set("b.example.test", "A", ["127.0.0.11"])
        dns_server.set("c.example.test", "A", ["127.0.0.12"])
        yield dns_server


def resolver_for(server: DnsServer, clock=None, **kwargs) -> Resolver:
    return Resolver(clock or FakeClock(), servers=[("127.0.0.1", server.port)], **kwargs)


async def test_targets_follow_naptr_srv_and_a(server):
    resolver = resolver_for(server, rng=random.Random(1))
    targets = await resolver.targets(Query("example.test"), UDP_TCP)
    assert set(targets[:2]) == {Endpoint("udp", "127.0.0.10", 5070),
                                Endpoint("udp", "127.0.0.11", 5080)}
    assert targets[2] == Endpoint("udp", "127.0.0.12", 5090)


async def test_cached_targets_answer_without_a_lookup_once_cached(server):
    resolver = resolver_for(server)
    query = Query("example.test")
    assert resolver.cached_targets(query, UDP_TCP) is None
    first = await resolver.targets(query, UDP_TCP)
    asked = sum(server.queries.values())
    again = resolver.cached_targets(query, UDP_TCP)
    assert again is not None and set(again) == set(first)
    assert sum(server.queries.values()) == asked


async def test_weights_share_the_first_choice_over_many_lookups(server):
    resolver = resolver_for(server, rng=random.Random(3))
    await resolver.targets(Query("example.test"), UDP_TCP)
    firsts = [resolver.cached_targets(Query("example.test"), UDP_TCP)[0].port
              for _ in range(1000)]
    share = firsts.count(5070) / len(firsts)
    assert 0.5 <= share <= 0.7  # weights 60:40; bounds are ~6 standard deviations
    assert 5090 not in firsts  # the priority-20 target only after both priority-10 ones


async def test_ttl_expiry_asks_again(server):
    clock = FakeClock()
    resolver = resolver_for(server, clock)
    await resolver.targets(Query("example.test"), UDP_TCP)
    assert server.queries[("_sip._udp.example.test", "SRV")] == 1
    clock.now += 29
    assert resolver.cached_targets(Query("example.test"), UDP_TCP) is not None
    clock.now += 2  # past the SRV records' 30 s TTL (the others have 300 s)
    assert resolver.cached_targets(Query("example.test"), UDP_TCP) is None
    await resolver.targets(Query("example.test"), UDP_TCP)
    assert server.queries[("_sip._udp.example.test", "SRV")] == 2
    assert server.queries[("a.example.test", "A")] == 1


async def test_ttl_bounds_apply(server):
    clock = FakeClock()
    resolver = resolver_for(server, clock, max_ttl=10)
    await resolver.targets(Query("example.test"), UDP_TCP)
    clock.now += 11
    assert resolver.cached_targets(Query("example.test"), UDP_TCP) is None


async def test_concurrent_lookups_of_one_name_share_the_query(server):
    resolver = resolver_for(server)
    results = []

    async def resolve() -> None:
        results.append(await resolver.resolve("a.example.test"))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(resolve)
    assert results == ["127.0.0.10"] * 5
    assert server.queries[("a.example.test", "A")] == 1


async def test_unknown_names_are_cached_negatively(server):
    clock = FakeClock()
    resolver = resolver_for(server, clock, negative_ttl=5)
    assert await resolver.resolve("nowhere.test") is None
    assert resolver.cached("nowhere.test") == (True, None)
    clock.now += 6
    assert resolver.cached("nowhere.test") == (False, None)


async def test_literals_and_static_hosts_need_no_lookup(server):
    resolver = resolver_for(server, hosts={"gw.internal": "127.0.0.20"})
    assert resolver.cached("127.0.0.5") == (True, "127.0.0.5")
    assert resolver.cached("[::1]") == (True, "::1")
    assert resolver.cached("GW.internal") == (True, "127.0.0.20")
    assert not resolver.wants_lookup_plan(Query("gw.internal"))
    assert not resolver.wants_lookup_plan(Query("127.0.0.1"))
    assert resolver.wants_lookup_plan(Query("example.test"))
    assert sum(server.queries.values()) == 0


async def test_lookups_off_resolves_nothing(server):
    resolver = resolver_for(server, lookups=False)
    assert resolver.cached("a.example.test") == (True, None)


async def test_an_unreachable_server_times_out_into_a_negative_answer():
    with DnsServer() as silent:
        silent.sock.close()  # nothing answers on that port any more
        resolver = Resolver(FakeClock(), servers=[("127.0.0.1", silent.port)], timeout=0.5)
        with trio.fail_after(10):
            assert await resolver.targets(Query("example.test"), UDP_TCP) == []


def test_blocklist_skips_then_forgets():
    clock = FakeClock()
    blocked = Blocklist(clock, expire=60)
    a, b = Endpoint("udp", "127.0.0.10", 5070), Endpoint("udp", "127.0.0.11", 5080)
    blocked.add(a, "timeout")
    assert blocked.usable([a, b]) == [b]
    assert blocked.skipped == 1
    assert blocked.usable([a]) == [a]  # every target blocked: still try one
    clock.now += 61
    assert blocked.usable([a, b]) == [a, b]
    assert blocked.view() == []


def test_blocklist_is_bounded():
    blocked = Blocklist(FakeClock(), max_entries=16)
    for port in range(100):
        blocked.add(Endpoint("udp", "127.0.0.1", port), "timeout")
    assert len(blocked) == 16
    assert blocked.is_blocked(Endpoint("udp", "127.0.0.1", 99))
    assert not blocked.is_blocked(Endpoint("udp", "127.0.0.1", 0))
