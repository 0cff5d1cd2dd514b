"""``[core] workers = 2`` with evapi: worker 0 holds the evapi port and its clients, the
other worker's relays and requests reach them over the link between the workers
(kamrouter/modules/evapi/link.py), and a controller's answer resumes the transaction in
the worker that parked it. Requests come from many source ports, so the kernel's
SO_REUSEPORT hash gives both workers some; the script writes its pid into what it sends,
which tells the worker."""
from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kamrouter.modules.evapi.framing import NetstringDecoder, encode_netstring
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.wait import TIMEOUT, wait_until

from .test_workers import WORKERS, Peer, ack_for, invite, worker_pids, worker_rpc
from .test_workers_state import options

SCRIPT = '''\
import os

from kamrouter.script import evapi, sl


async def request_route(msg):
    if msg.method == "OPTIONS":
        evapi.relay({"event": "options", "call_id": msg.call_id, "pid": os.getpid()})
        sl.send_reply(msg, 200, "OK")
        return
    if msg.method == "INVITE":
        answer = await evapi.async_relay(msg, {"event": "invite", "pid": os.getpid()},
                                         timeout=20)
        if answer is None:
            sl.send_reply(msg, 503, "No Answer")
        else:
            sl.send_reply(msg, answer["code"], f"resumed in {os.getpid()}")
'''
#: Source ports tried at most until both workers were seen.
PORTS = 24


@pytest.fixture
def router(tmp_path: Path) -> Iterator[ProxyProcess]:
    port = free_port()
    proxy = kamrouter_proxy(tmp_path / "router", free_port(), script=SCRIPT, sections={
        "core": {"workers": WORKERS}, "evapi": {"bind_addr": f"{LOOPBACK}:{port}"}})
    proxy.evapi_port = port  # type: ignore[attr-defined]
    proxy.start()
    yield proxy
    proxy.stop()


class Controller:
    """An evapi client of this test (blocking socket, bounded reads)."""

    def __init__(self, router: ProxyProcess) -> None:
        self.sock = socket.create_connection((LOOPBACK, router.evapi_port),  # type: ignore[attr-defined]
                                             timeout=TIMEOUT)
        self.decoder = NetstringDecoder()
        self.pending: list[bytes] = []

    def receive(self) -> dict[str, Any]:
        while not self.pending:
            data = self.sock.recv(65536)
            assert data, "the router closed the evapi connection"
            self.pending += self.decoder.feed(data)
        return json.loads(self.pending.pop(0))

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(encode_netstring(json.dumps(message).encode()))

    def close(self) -> None:
        self.sock.close()


def connected(router: ProxyProcess) -> Controller:
    """A controller, once every worker knows of it."""
    controller = Controller(router)
    wait_until(lambda: all(worker_rpc(router, i, "stats.fetchn", "evapi:clients")
                           == {"evapi.clients": 1} for i in range(WORKERS)),
               "every worker sees the controller", detail=router.log_tail)
    return controller


def relay_from(router: ProxyProcess, controller: Controller, peer: Peer, key: str) -> int:
    """The pid of the worker that relayed an OPTIONS from ``peer``."""
    peer.send(options(router.port, key, peer.port), router.port)
    answer, _ = peer.receive()
    assert answer.startswith("SIP/2.0 200"), answer
    event = controller.receive()
    assert event["call_id"] == key
    return int(event["pid"])


def test_each_workers_relay_reaches_the_client_and_answers_resume_where_parked(
        router: ProxyProcess) -> None:
    pids = worker_pids(router)
    controller = connected(router)
    callee = Peer()
    peers: dict[int, Peer] = {}  # a source port each worker serves, by pid
    try:
        for n in range(PORTS):
            peer = Peer()
            pid = relay_from(router, controller, peer, f"o-{n}")
            assert pid in pids
            peers.setdefault(pid, peer)
            if len(peers) == WORKERS:
                break
        assert sorted(peers) == sorted(pids), "both workers' relays reached the client"
        for pid, peer in peers.items():  # an INVITE parked in each worker
            call = f"i-{pid}"
            request = invite(peer, callee, call).replace("\n", "\r\n")
            peer.send(invite(peer, callee, call), router.port)
            event = controller.receive()
            assert event["event"] == "invite" and event["pid"] == pid
            assert int(event["tlabel"]) % WORKERS == pids.index(pid)  # the id names it
            controller.send({"id": event["id"], "code": 480})
            final = ""
            while not final.startswith("SIP/2.0 480"):
                final, _ = peer.receive()
                assert final.startswith(("SIP/2.0 100", "SIP/2.0 480")), final
            assert f"SIP/2.0 480 resumed in {pid}\r\n" in final
            peer.send(ack_for(request, final), router.port)
        counters = router.rpc("stats.fetchn", "evapi:")
        assert counters["evapi.timeouts"] == 0 and counters["evapi.dropped"] == 0
    finally:
        for peer in [callee, *peers.values()]:
            peer.close()
        controller.close()


def test_a_restarted_worker_0_listens_again_and_the_other_reaches_its_clients(
        router: ProxyProcess) -> None:
    pids = worker_pids(router)
    controller = connected(router)
    peer = Peer()
    try:
        for n in range(PORTS):  # a source port that worker 1 serves
            if relay_from(router, controller, peer, f"o-{n}") == pids[1]:
                break
            peer.close()
            peer = Peer()
        else:
            pytest.fail(f"no source port of {PORTS} reached worker 1")
        os.kill(pids[0], signal.SIGKILL)
        controller.sock.settimeout(TIMEOUT)
        assert controller.sock.recv(65536) == b"", "worker 0's clients are disconnected"
        controller.close()
        wait_until(lambda: worker_pids(router)[0] not in (0, pids[0])
                   and "starting" not in router.rpc("core.psx")[1]["DSC"],
                   "worker 0 restarted", detail=router.log_tail)
        controller = connected(router)  # the client reconnects
        assert relay_from(router, controller, peer, "after") == pids[1]
    finally:
        peer.close()
        controller.close()
