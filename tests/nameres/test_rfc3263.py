"""RFC 3263 §4 lookup order and RFC 2782 SRV selection, driven by a dictionary of records."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from kamrouter.dns.rfc3263 import Naptr, Query, Srv, locate, order_srv
from kamrouter.net import Endpoint

ALL = ("udp", "tcp", "tls")


def lookup_from(records: dict[tuple[str, str], list[object]], asked: list | None = None):
    async def lookup(name: str, rdtype: str):
        if asked is not None:
            asked.append((name, rdtype))
        return records.get((name, rdtype), [])
    return lookup


ZONE = {
    ("example.test", "NAPTR"): [
        Naptr(20, 10, "s", "SIP+D2U", "_sip._udp.example.test"),
        Naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.example.test"),
        Naptr(5, 10, "s", "SIP+D2X", "_sip._sctp.example.test"),  # a service we cannot use
    ],
    ("_sip._tcp.example.test", "SRV"): [Srv(10, 0, 5070, "b.example.test"),
                                        Srv(5, 0, 5080, "a.example.test")],
    ("_sip._udp.example.test", "SRV"): [Srv(10, 0, 5090, "a.example.test")],
    ("a.example.test", "A"): ["127.0.0.10"],
    ("b.example.test", "A"): ["127.0.0.11"],
    ("b.example.test", "AAAA"): ["::1"],
    ("plain.test", "A"): ["127.0.0.12"],
    ("_sip._udp.srvonly.test", "SRV"): [Srv(1, 0, 5062, "a.example.test")],
    ("_sips._tcp.secure.test", "SRV"): [Srv(1, 0, 5063, "a.example.test")],
    ("_sip._udp.secure.test", "SRV"): [Srv(1, 0, 5064, "b.example.test")],
}


async def test_naptr_order_then_srv_priority_then_addresses():
    targets = await locate(Query("example.test"), lookup_from(ZONE), ALL)
    assert targets == [Endpoint("tcp", "127.0.0.10", 5080), Endpoint("tcp", "127.0.0.11", 5070),
                       Endpoint("tcp", "::1", 5070)]


async def test_naptr_services_the_router_cannot_send_on_are_skipped():
    targets = await locate(Query("example.test"), lookup_from(ZONE), ("udp",))
    assert targets == [Endpoint("udp", "127.0.0.10", 5090)]


async def test_without_naptr_srv_is_tried_per_transport():
    asked: list = []
    targets = await locate(Query("srvonly.test"), lookup_from(ZONE, asked), ALL)
    assert targets == [Endpoint("udp", "127.0.0.10", 5062)]
    assert asked[:2] == [("srvonly.test", "NAPTR"), ("_sip._udp.srvonly.test", "SRV")]


async def test_naptr_can_be_skipped():
    asked: list = []
    await locate(Query("srvonly.test"), lookup_from(ZONE, asked), ALL, naptr=False)
    assert ("srvonly.test", "NAPTR") not in asked


async def test_no_srv_falls_back_to_addresses_on_the_default_port():
    targets = await locate(Query("plain.test"), lookup_from(ZONE), ALL)
    assert targets == [Endpoint("udp", "127.0.0.12", 5060)]


async def test_explicit_port_means_addresses_only():
    asked: list = []
    targets = await locate(Query("example.test", port=5099), lookup_from(ZONE, asked), ALL)
    assert targets == []
    assert {rdtype for _, rdtype in asked} == {"A", "AAAA"}


async def test_explicit_transport_without_port_uses_that_srv():
    targets = await locate(Query("example.test", transport="udp"), lookup_from(ZONE), ALL)
    assert targets == [Endpoint("udp", "127.0.0.10", 5090)]


async def test_sips_keeps_only_secure_services():
    targets = await locate(Query("secure.test", secure=True), lookup_from(ZONE), ALL)
    assert targets == [Endpoint("tls", "127.0.0.10", 5063)]


async def test_a_name_that_does_not_resolve_has_no_targets():
    assert await locate(Query("nowhere.test"), lookup_from(ZONE), ALL) == []


def test_srv_priority_comes_first_and_weights_share_the_load():
    records = [Srv(20, 100, 1, "backup"), Srv(10, 90, 1, "big"), Srv(10, 10, 1, "small")]
    rng = random.Random(7)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(1000))
    assert set(firsts) == {"big", "small"}
    assert 850 <= firsts["big"] <= 950  # 90 % expected; bounds are ~8 standard deviations
    assert all(order_srv(records, rng)[-1].target == "backup" for _ in range(100))


def test_zero_weights_are_still_tried():
    records = [Srv(10, 0, 1, "zero"), Srv(10, 50, 1, "heavy")]
    orders = {tuple(r.target for r in order_srv(records, random.Random(i))) for i in range(50)}
    assert all(set(order) == {"zero", "heavy"} for order in orders)


def test_without_load_balancing_the_heaviest_goes_first():
    records = [Srv(10, 10, 1, "small"), Srv(10, 90, 1, "big"), Srv(5, 1, 1, "first")]
    assert [r.target for r in order_srv(records, None)] == ["first", "big", "small"]


@pytest.mark.parametrize("target", ["", "."])
def test_a_dot_target_means_no_service(target):
    import trio
    zone = {("_sip._udp.none.test", "SRV"): [Srv(1, 0, 5060, target)]}
    assert trio.run(locate, Query("none.test"), lookup_from(zone), ("udp",)) == []
