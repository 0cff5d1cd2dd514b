"""``[core] workers = 2`` with state in memory shared by the state bus (kamrouter/modules/bus.py):
what a routing script writes in the worker that handles one request (htable items and
counters, usrloc bindings, pike bans) is seen by requests the other worker handles, and a
killed worker's successor starts with the tables as they are.

Requests come from many source ports, so the kernel's SO_REUSEPORT hash gives both workers
some (checked through each worker's own control socket, ``run/worker-N.sock``, which also
answers what each worker's tables hold).
"""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.rpc import RpcFailed
from support.wait import wait_until

from .test_workers import WORKERS, Peer, received, reply, worker_pids, worker_rpc

SCRIPT = '''\
from kamrouter.script import htable, pike, registrar, sl, tm


def request_route(msg):
    if msg.method == "REGISTER":
        registrar.save(msg, "location")
        return
    if msg.method == "OPTIONS":  # X-Key: the script's writes
        key = msg.get_header("X-Key")
        htable.set("seen", key, msg.src_port)
        htable.inc("count", "all")
        if msg.get_header("X-Ban"):
            pike.ban(msg.get_header("X-Ban"), 600, "test")
        sl.send_reply(msg, 200, "OK")
        return
    if msg.method == "ACK":
        return
    if registrar.lookup(msg, "location") > 0:
        tm.relay(msg)
    else:
        sl.send_reply(msg, 404, "Not Found")
'''

TABLES = [{"name": "seen"}, {"name": "count", "initval": 0}]
#: Source ports per test: enough that both workers get some (the hash is by port).
PORTS = 24


@pytest.fixture
def router(tmp_path: Path) -> Iterator[ProxyProcess]:
    proxy = kamrouter_proxy(tmp_path / "router", free_port(), script=SCRIPT, sections={
        "core": {"workers": WORKERS}, "htable": TABLES,
        "registrar": {}, "usrloc": {"db_mode": "memory"}})
    proxy.start()
    yield proxy
    proxy.stop()


def options(port: int, key: str, source: int, ban: str = "") -> str:
    extra = f"X-Ban: {ban}\n" if ban else ""
    return (f"OPTIONS sip:{LOOPBACK}:{port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{source};branch=z9hG4bK-{key}\n"
            f"From: <sip:t@{LOOPBACK}>;tag=f-{key}\nTo: <sip:{LOOPBACK}:{port}>\n"
            f"Call-ID: {key}\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nX-Key: {key}\n{extra}"
            "Content-Length: 0\n\n")


def ask(router: ProxyProcess, peer: Peer, text: str) -> str:
    peer.send(text, router.port)
    answer, _ = peer.receive()
    return answer


def htable_get(router: ProxyProcess, index: int, table: str, key: str) -> object:
    """The value worker ``index`` holds for ``key`` (None: it has none)."""
    try:
        found = worker_rpc(router, index, "htable.get", table, key)
    except RpcFailed:
        return None
    return found["item"]["value"]  # type: ignore[index]


def write_from_many_ports(router: ProxyProcess, count: int, tag: str) -> dict[str, int]:
    """One OPTIONS per new source port; the keys written and their ports."""
    written = {}
    for n in range(count):
        peer = Peer()
        try:
            key = f"{tag}-{n}"
            assert ask(router, peer, options(router.port, key, peer.port)).startswith("SIP/2.0 200")
            written[key] = peer.port
        finally:
            peer.close()
    return written


def test_a_script_write_in_one_worker_is_seen_by_the_other(router: ProxyProcess) -> None:
    before = received(router)
    written = write_from_many_ports(router, PORTS, "w")
    after = received(router)
    assert all(after[i] > before[i] for i in range(WORKERS)), (before, after)

    def coherent() -> bool:
        return all(htable_get(router, i, "seen", key) == port
                   for i in range(WORKERS) for key, port in written.items())
    wait_until(coherent, "every write in every worker", detail=router.log_tail)
    # Increments made in both workers all count, in both.
    wait_until(lambda: [htable_get(router, i, "count", "all") for i in range(WORKERS)]
               == [PORTS] * WORKERS, "the counter in every worker", detail=router.log_tail)
    # A write over RPC (made by worker 0) reaches the other worker too; so does a delete.
    router.rpc("htable.sets", "seen", "rpc", "yes")
    wait_until(lambda: htable_get(router, 1, "seen", "rpc") == "yes", "the RPC write")
    router.rpc("htable.delete", "seen", "w-0")
    wait_until(lambda: htable_get(router, 1, "seen", "w-0") is None, "the delete")


def test_a_ban_decided_in_one_worker_applies_in_all(router: ProxyProcess) -> None:
    peer = Peer()
    try:
        assert ask(router, peer, options(router.port, "b", peer.port, ban="192.0.2.77")).startswith(
            "SIP/2.0 200")
    finally:
        peer.close()

    def banned(index: int) -> bool:
        listed = worker_rpc(router, index, "pike.list")
        return any(e["ip_addr"] == "192.0.2.77" for e in listed["list"])  # type: ignore[index]
    wait_until(lambda: all(banned(i) for i in range(WORKERS)), "the ban in every worker")
    router.rpc("pike.unban", "192.0.2.77")
    wait_until(lambda: not any(banned(i) for i in range(WORKERS)), "the unban everywhere")


REGISTER = """REGISTER sip:{host}:{port} SIP/2.0
Via: SIP/2.0/UDP {host}:{phone};branch=z9hG4bK-reg
From: <sip:bob@{host}>;tag=r1
To: <sip:bob@{host}>
Call-ID: reg-bob
CSeq: 1 REGISTER
Contact: <sip:bob@{host}:{phone}>;expires=600
Max-Forwards: 70
Content-Length: 0

"""


def registered(router: ProxyProcess, index: int, aor: str) -> bool:
    try:
        return bool(worker_rpc(router, index, "ul.lookup", "location", aor))
    except RpcFailed:  # 404: not (yet) there
        return False


def message(port: int, n: int, source: int) -> str:
    return (f"MESSAGE sip:bob@{LOOPBACK}:{port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{source};branch=z9hG4bK-m{n}\n"
            f"From: <sip:alice@{LOOPBACK}>;tag=a{n}\nTo: <sip:bob@{LOOPBACK}>\n"
            f"Call-ID: msg-{n}\nCSeq: 1 MESSAGE\nMax-Forwards: 70\n"
            "Content-Length: 0\n\n")


def test_a_phone_registered_through_one_worker_is_reached_through_both(
        router: ProxyProcess) -> None:
    phone = Peer()
    try:
        answer = ask(router, phone, REGISTER.format(host=LOOPBACK, port=router.port,
                                                    phone=phone.port))
        assert answer.startswith("SIP/2.0 200"), answer
        wait_until(lambda: all(registered(router, i, "bob") for i in range(WORKERS)),
                   "the binding in every worker")
        before = received(router)
        for n in range(PORTS):
            caller = Peer()
            try:
                caller.send(message(router.port, n, caller.port), router.port)
                while True:  # every request reaches the phone (skip a retransmission)
                    request, source = phone.receive()
                    assert request.startswith("MESSAGE sip:bob@"), request
                    phone.sock.sendto(reply(request, "200 OK").replace("\n", "\r\n")
                                      .encode(), source)
                    if f"Call-ID: msg-{n}\r\n" in request:
                        break
            finally:
                caller.close()
        after = received(router)
        assert all(after[i] > before[i] for i in range(WORKERS)), (before, after)
    finally:
        phone.close()


def test_a_restarted_worker_gets_the_tables(router: ProxyProcess) -> None:
    written = write_from_many_ports(router, PORTS, "r")
    wait_until(lambda: all(htable_get(router, i, "seen", key) == port
                           for i in range(WORKERS) for key, port in written.items()),
               "every write in every worker", detail=router.log_tail)
    router.rpc("pike.ban", "192.0.2.88", 600)
    victim = 1
    pids = worker_pids(router)
    os.kill(pids[victim], signal.SIGKILL)
    wait_until(lambda: worker_pids(router)[victim] not in (0, pids[victim])
               and "starting" not in router.rpc("core.psx")[victim + 1]["DSC"],
               f"worker {victim} restarted", detail=router.log_tail)
    # The new worker loaded the tables at its start, before it served.
    assert all(htable_get(router, victim, "seen", key) == port
               for key, port in written.items())
    assert htable_get(router, victim, "count", "all") == PORTS
    listed = worker_rpc(router, victim, "pike.list")
    assert any(e["ip_addr"] == "192.0.2.88" for e in listed["list"])  # type: ignore[index]
    assert "loaded the shared state from worker 0" in router.log_tail()
    # And it takes part again: a later write reaches it.
    router.rpc("htable.sets", "seen", "later", "x")
    wait_until(lambda: htable_get(router, victim, "seen", "later") == "x", "a later write")


def test_garbage_on_the_bus_is_counted_and_dropped(router: ProxyProcess) -> None:
    run = router.workdir / "run"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for garbage in (b"not json", b"[" * 5000, b'{"o": 0, "p": 1, "n": 1, "m": [1]}',
                        b'{"o": 0, "p": 1, "n": 2, "m": [["htable", {"h": "seen"}]]}',
                        b'{"o": 0, "p": 1, "n": 3, "m": [["nosuch", {}]]}', b"x" * 70000):
            try:
                sock.sendto(garbage, str(run / "bus-1.sock"))
            except OSError:  # too big for a datagram here: the bound is checked in unit tests
                pass
    finally:
        sock.close()
    wait_until(lambda: worker_rpc(router, 1, "stats.fetchn", "bus:dropped_malformed")
               ["bus.dropped_malformed"] >= 5, "the garbage counted")  # type: ignore[index]
    # The worker goes on: writes still reach it.
    written = write_from_many_ports(router, 4, "g")
    wait_until(lambda: all(htable_get(router, 1, "seen", key) == port
                           for key, port in written.items()), "later writes")


def test_an_address_added_over_rpc_is_in_every_workers_table(router: ProxyProcess) -> None:
    def allowed(index: int) -> bool:
        answer = worker_rpc(router, index, "permissions.testAddress", 7, "192.0.2.9")
        return bool(answer["allowed"])  # type: ignore[index]

    router.rpc("permissions.addressAdd", 7, "192.0.2.9")
    for index in range(WORKERS):
        wait_until(lambda index=index: allowed(index),  # type: ignore[misc]
                   f"worker {index} allowing the added address", detail=router.log_tail)
    router.rpc("permissions.addressRemove", 7, "192.0.2.9")
    for index in range(WORKERS):
        wait_until(lambda index=index: not allowed(index),  # type: ignore[misc]
                   f"worker {index} no longer allowing it", detail=router.log_tail)


def test_with_sqlite_worker_0_writes_every_workers_registrations(tmp_path: Path) -> None:
    """usrloc in SQLite with two workers: phones registered through either worker are in
    the file (worker 0 writes what the bus brings it), and a router started on the file
    has them all."""
    db_file = tmp_path / "location.sqlite"
    sections = {"core": {"workers": WORKERS}, "htable": TABLES, "registrar": {},
                "usrloc": {"db_mode": "sqlite", "db_file": str(db_file)}}
    proxy = kamrouter_proxy(tmp_path / "router", free_port(), script=SCRIPT,
                            sections=sections)
    proxy.start()
    aors = [f"u{n}" for n in range(PORTS)]
    try:
        before = received(proxy)
        for aor in aors:  # each from a port of its own: both workers get some
            phone = Peer()
            try:
                text = REGISTER.format(host=LOOPBACK, port=proxy.port, phone=phone.port)
                answer = ask(proxy, phone, text.replace("bob", aor)
                             .replace("Call-ID: reg-bob", f"Call-ID: reg-{aor}"))
                assert answer.startswith("SIP/2.0 200"), answer
            finally:
                phone.close()
        after = received(proxy)
        assert all(after[i] > before[i] for i in range(WORKERS)), (before, after)

        def stored() -> set[str]:
            with sqlite3.connect(db_file) as db:
                return {row[0] for row in db.execute("SELECT aor FROM location")}
        wait_until(lambda: stored() == set(aors), "every registration in the file",
                   detail=proxy.log_tail)
    finally:
        proxy.stop()
    again = kamrouter_proxy(tmp_path / "again", free_port(), script=SCRIPT,
                            sections={**sections, "core": {"workers": 1}})
    again.start()
    try:
        assert all(again.rpc("ul.lookup", "location", aor) for aor in aors)
    finally:
        again.stop()
