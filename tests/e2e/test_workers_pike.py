"""``[core] workers = 2`` with pike: one source whose ports the kernel spreads over both
workers is banned at the configured rate, not twice it (pike/bus_link.py sums the
workers' counts), and each worker's ``pike.list`` shows the router's counts."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.wait import wait_until

from .test_workers import WORKERS, received, worker_rpc

STRANGER = "127.0.0.2"  # not trusted: rate-limited by the default script
LIMIT = 20


@pytest.fixture
def router(tmp_path: Path) -> Iterator[ProxyProcess]:
    proxy = kamrouter_proxy(tmp_path / "router", free_port(), sections={
        "core": {"workers": WORKERS},
        "pike": {"reqs_density_per_unit": LIMIT, "sampling_time_unit": 3600}})
    proxy.start()
    yield proxy
    proxy.stop()


class Stranger:
    """One UDP port of the stranger's address."""

    def __init__(self, worker: int) -> None:
        """A port the kernel gives to ``worker`` (kamrouter/transport/steering.py)."""
        while True:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((STRANGER, 0))
            self.port = self.sock.getsockname()[1]
            if (self.port >> 1) % WORKERS == worker:
                break
            self.sock.close()

    def options(self, proxy: ProxyProcess, n: int) -> None:
        self.sock.sendto((
            f"OPTIONS sip:{proxy.address} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {STRANGER}:{self.port};branch=z9hG4bKpike{n}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:s@{STRANGER}>;tag=s{n}\r\n"
            f"To: <sip:{proxy.address}>\r\nCall-ID: pike-{n}@{STRANGER}\r\n"
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(), (LOOPBACK, proxy.port))

    def reply(self, timeout: float) -> str | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535).split(b"\r\n", 1)[0].decode()
        except TimeoutError:
            return None


def row(proxy: ProxyProcess, index: int) -> dict[str, Any]:
    rows = worker_rpc(proxy, index, "pike.list", "ALL")["list"]  # type: ignore[index]
    return next((r for r in rows if r["ip_addr"] == STRANGER), {"leaf_hits_curr": 0})


def test_a_source_spread_over_the_workers_is_banned_at_the_configured_rate(
        router: ProxyProcess) -> None:
    strangers: dict[int, Stranger] = {}  # worker index -> a port the kernel gives it
    made: list[Stranger] = []
    sent = 0

    def send(stranger: Stranger) -> str | None:
        nonlocal sent
        sent += 1
        stranger.options(router, sent)
        answer = stranger.reply(timeout=10 if sent <= LIMIT else 1)
        for index in range(WORKERS):  # the count reaches every worker before the next
            wait_until(lambda index=index: row(router, index)["leaf_hits_curr"] == sent,  # type: ignore[misc]
                       f"worker {index} counting {sent} requests", detail=router.log_tail)
        return answer

    try:
        for index in range(WORKERS):
            stranger = Stranger(index)
            made.append(stranger)
            before = received(router)
            assert send(stranger) == "SIP/2.0 200 OK"
            worker = next(i for i, n in enumerate(received(router)) if n > before[i])
            assert worker == index, "the kernel's steering gave the port to another worker"
            strangers[worker] = stranger
        while sent < LIMIT:  # the rest of the limit, alternating between the workers
            assert send(strangers[sent % WORKERS]) == "SIP/2.0 200 OK"
        assert send(strangers[sent % WORKERS]) is None  # one more: dropped, banned
        for index in range(WORKERS):
            banned = row(router, index)
            assert (banned["status"], banned["reason"]) == ("HOT", "flood")
        stats = router.rpc("stats.fetchn", "pike:")
        assert (stats["pike.detected_floods"], stats["pike.blocked_requests"]) == (1, 1)
    finally:
        for stranger in made:
            stranger.sock.close()
