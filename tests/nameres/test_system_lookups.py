"""The resolver without configured name servers uses getaddrinfo for A/AAAA; here trio's
hostname resolver is replaced, so there is no DNS traffic."""
from __future__ import annotations

import socket
from typing import Any

import trio

from kamrouter.dns import resolver as resolver_module
from kamrouter.dns import Resolver


class CountingResolver(trio.abc.HostnameResolver):
    """Answers every name with 192.0.2.<n> after a short wait, counting the lookups."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> list[Any]:
        if family == socket.AF_INET6:
            return []
        self.lookups.append(host)
        await trio.sleep(0.01)
        address = f"192.0.2.{len(self.lookups)}"
        return [(socket.AF_INET, socket.SOCK_DGRAM, 0, "", (address, 0))]

    async def getnameinfo(self, sockaddr: Any, flags: int) -> Any:
        raise NotImplementedError


async def test_concurrent_requests_for_a_name_share_one_lookup() -> None:
    counting = CountingResolver()
    trio.socket.set_custom_hostname_resolver(counting)
    resolver = Resolver(trio.current_time)
    answers: list[str | None] = []

    async def ask() -> None:
        answers.append(await resolver.resolve("gw.example"))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask)
    assert len(counting.lookups) == 1, counting.lookups
    assert answers == ["192.0.2.1"] * 5
    assert await resolver.resolve("GW.example") == "192.0.2.1"  # cached, any case
    assert len(counting.lookups) == 1, "no second lookup"


async def test_the_cache_is_bounded(monkeypatch: Any) -> None:
    trio.socket.set_custom_hostname_resolver(CountingResolver())
    monkeypatch.setattr(resolver_module, "MAX_CACHED_RECORDS", 3)
    resolver = Resolver(trio.current_time)
    for number in range(10):
        await resolver.resolve(f"host{number}.example")
    assert len(resolver._cache) <= 3
