"""``[core] workers = 2`` with the dispatcher: worker 0 alone probes, the other worker
follows its destination states (kamrouter/modules/dispatcher/workers.py, bus_link.py), and
algorithm 10's call load is one table for the router (load_bus.py); real sipp UASes
(answering OPTIONS with -aa) are the destinations, and each worker's own control socket
(``run/worker-N.sock``) tells what that worker holds.
"""
from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatcher.lab import DispatcherLab
from support.ports import free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.rpc import rpc_call
from support.sipp import Sipp
from support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")

WORKERS = 2


@pytest.fixture
def uas(tmp_path: Path) -> Iterator[Sipp]:
    peer = Sipp("uas", "uas.xml", tmp_path, port=free_port(), calls=1_000_000, timeout_s=300,
                trace_messages=True, extra_args=("-aa",))
    peer.start()
    peer.wait_listening()
    yield peer
    peer.kill()


@pytest.fixture
def router(tmp_path: Path, uas: Sipp) -> Iterator[ProxyProcess]:
    list_file = tmp_path / "dispatcher.list"
    list_file.write_text(f"1 sip:{uas.address} 8 0\n")
    proxy = kamrouter_proxy(tmp_path / "router", free_port(), sections={
        "core": {"workers": WORKERS},
        # A short interval notices the dead UAS soon, a long timeout never takes the live
        # one for dead on a loaded machine.
        "dispatcher": {"list_file": str(list_file), "ping_interval": 0.5,
                       "ping_timeout": 3.0, "probing_mode": 1}})
    proxy.start()
    yield proxy
    proxy.stop()


def worker_rpc(proxy: ProxyProcess, index: int, method: str, *params: object) -> object:
    return rpc_call(proxy.workdir / "run" / f"worker-{index}.sock", method, *params)


def flags(proxy: ProxyProcess, index: int) -> str:
    listing = worker_rpc(proxy, index, "dispatcher.list")
    (target,) = listing["RECORDS"][0]["SET"]["TARGETS"]  # type: ignore[index]
    return str(target["DEST"]["FLAGS"])


def probes_sent(proxy: ProxyProcess, index: int) -> int:
    values = worker_rpc(proxy, index, "stats.fetchn", "dispatcher:set1_probes_sent")
    return int(values.get("dispatcher.set1_probes_sent", 0))  # type: ignore[attr-defined]


def in_use(proxy: ProxyProcess, index: int) -> int:
    values = worker_rpc(proxy, index, "stats.fetchn", "tmx:inuse_transactions")
    return int(values["tmx.inuse_transactions"])  # type: ignore[index]


def test_only_worker_0_probes_and_every_worker_sees_the_destination_go(
        router: ProxyProcess, uas: Sipp) -> None:
    wait_until(lambda: probes_sent(router, 0) >= 4, "worker 0 probing a few rounds",
               detail=router.log_tail)
    router.rpc("dispatcher.ping_active", 0)  # worker 0's: the only one that probes
    wait_until(lambda: in_use(router, 0) == 0, "worker 0's last probe answered",
               detail=router.log_tail)
    sent = probes_sent(router, 0)
    assert probes_sent(router, 1) == 0
    assert [flags(router, i) for i in range(WORKERS)] == ["AP"] * WORKERS
    # Every OPTIONS the destination received is one of worker 0's (a retransmission
    # repeats its branch).
    os.kill(uas.pid or 0, signal.SIGINT)  # sipp writes its message trace and exits
    options = uas.wait(timeout=10).received("OPTIONS")
    assert len({message.headers("Via")[0] for message in options}) == sent

    router.rpc("dispatcher.ping_active", 1)
    for index in range(WORKERS):
        wait_until(lambda index=index: flags(router, index) == "IP",  # type: ignore[misc]
                   f"worker {index} marking the destination inactive", detail=router.log_tail)
    assert router.rpc("dispatcher.list")["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"][
        "FLAGS"] == "IP"
    assert probes_sent(router, 1) == 0
    # One destination list, in every worker: counted once.
    assert router.rpc("stats.fetchn", "dispatcher:inactive_targets") == {
        "dispatcher.inactive_targets": 1}

    # An operator's change reaches every worker at once (the supervisor runs it in each).
    router.rpc("dispatcher.ping_active", 0)
    wait_until(lambda: in_use(router, 0) == 0, "worker 0's last probe answered",
               detail=router.log_tail)
    router.rpc("dispatcher.set_state", "a", 1, f"sip:{uas.address}")
    assert [flags(router, i) for i in range(WORKERS)] == ["AX"] * WORKERS


MARKING_SCRIPT = '''\
from kamrouter.script import dispatcher, sl


def request_route(msg):
    uri = msg.get_header("X-Mark")
    if uri:
        dispatcher.mark_addr("ip", 1, uri)
    sl.send_reply(msg, 200, "OK")
'''


def test_a_scripts_mark_in_worker_1_holds_in_worker_0(tmp_path: Path, uas: Sipp) -> None:
    from .test_workers import Peer, received  # noqa: PLC0415 - the e2e helpers of workers

    list_file = tmp_path / "dispatcher.list"
    list_file.write_text(f"1 sip:{uas.address} 8 0\n")
    proxy = kamrouter_proxy(tmp_path / "router", free_port(), script=MARKING_SCRIPT, sections={
        "core": {"workers": WORKERS}, "dispatcher": {"list_file": str(list_file)}})
    proxy.start()
    peers: list[Peer] = []
    try:
        proxy.rpc("dispatcher.ping_active", 0)  # no probe undoes the mark
        wait_until(lambda: in_use(proxy, 0) == 0, "worker 0's last probe answered",
                   detail=proxy.log_tail)
        assert [flags(proxy, i) for i in range(WORKERS)] == ["AX"] * WORKERS

        def options(peer: Peer, mark: str = "") -> None:
            extra = f"X-Mark: {mark}\n" if mark else ""
            peer.send(f"OPTIONS sip:{proxy.address} SIP/2.0\n"
                      f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-{len(peers)}"
                      f"{mark and '-m'}\nFrom: <sip:t@127.0.0.1>;tag=f\nTo: <sip:{proxy.address}>\n"
                      f"Call-ID: mark-{peer.port}\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n{extra}"
                      "Content-Length: 0\n\n", proxy.port)
            assert peer.receive()[0].startswith("SIP/2.0 200")

        # A source port the kernel hashes to worker 1 (found by asking, port by port).
        for _ in range(64):
            peers.append(Peer())
            before = received(proxy)
            options(peers[-1])
            if received(proxy)[1] > before[1]:
                break
        else:
            pytest.fail("no source port reached worker 1")
        options(peers[-1], f"sip:{uas.address}")
        wait_until(lambda: flags(proxy, 0) == "IP", "worker 0 holding worker 1's mark",
                   detail=proxy.log_tail)
        assert flags(proxy, 1) == "IP"
    finally:
        for peer in peers:
            peer.close()
        proxy.stop()


# -- algorithm 10: one call load for the router -------------------------------------------------

def ports_reaching_each_worker(lab: DispatcherLab) -> list[int]:
    """A free UDP port per worker whose datagrams the kernel gives that worker (found by
    sending a keepalive OPTIONS from it and asking the workers who got it)."""
    from .test_workers import Peer  # noqa: PLC0415 - the e2e helpers of workers

    assert lab.proxy is not None
    found: dict[int, int] = {}
    for _ in range(64):
        peer = Peer()
        before = [int(lab.rpc_worker(i, "stats.fetchn", "core:rcv_requests")
                      ["core.rcv_requests"]) for i in range(WORKERS)]
        peer.send(f"OPTIONS sip:{lab.proxy.address} SIP/2.0\n"
                  f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-find{peer.port}\n"
                  f"From: <sip:t@127.0.0.1>;tag=f\nTo: <sip:{lab.proxy.address}>\n"
                  f"Call-ID: find-{peer.port}\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n"
                  "Content-Length: 0\n\n", lab.proxy.port)
        assert peer.receive()[0].startswith("SIP/2.0 200")
        peer.close()
        after = [int(lab.rpc_worker(i, "stats.fetchn", "core:rcv_requests")
                     ["core.rcv_requests"]) for i in range(WORKERS)]
        found.setdefault(next(i for i in range(WORKERS) if after[i] > before[i]), peer.port)
        if len(found) == WORKERS:
            return [found[i] for i in range(WORKERS)]
    pytest.fail(f"no source port reached every worker: {found}")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[DispatcherLab]:
    dispatcher_lab = DispatcherLab(tmp_path)
    yield dispatcher_lab
    dispatcher_lab.close()


def test_call_load_is_one_table_for_the_router(lab: DispatcherLab) -> None:
    for name in "ab":
        lab.start_uas(name)
    lab.write_list([f"1 {lab.uri(n)} 8 0 duid={n}" for n in "ab"])
    lab.start_router(10, workers=WORKERS, ping_interval=0.5, ping_timeout=3.0,
                     probing_mode=1)
    lab.wait_for("all destinations active", lambda: set(lab.states().values()) == {"AP"})

    def targets(index: int | None) -> list[dict[str, Any]]:
        listing = lab.rpc("dispatcher.list") if index is None else \
            lab.rpc_worker(index, "dispatcher.list")
        return [t["DEST"]["RUNTIME"] for t in listing["RECORDS"][0]["SET"]["TARGETS"]]

    def loads(index: int) -> list[int]:
        return [runtime["DLGLOAD"] for runtime in targets(index)]

    # One caller per worker, 10 calls each, all up at once (each lasts 5 s).
    callers = [lab.uac(10, rate=20, pause_ms=5000, port=port)
               for port in ports_reaching_each_worker(lab)]
    # Each worker counts every call of the router, the other worker's too.
    for index in range(WORKERS):
        lab.wait_for(f"worker {index} counting all 20 calls",
                     lambda index=index: sum(loads(index)) == 20)  # type: ignore[misc]
    assert all(abs(load - 10) <= 2 for load in loads(0)), loads(0)  # the least loaded
    for caller in callers:
        result = caller.wait()
        assert result.ok, result.report()
    for index in range(WORKERS):  # every BYE ended its call everywhere
        lab.wait_for(f"worker {index} counting no call",
                     lambda index=index: loads(index) == [0, 0])  # type: ignore[misc]
    # Each worker counts its own selections; the supervisor's listing adds them up.
    own = [sum(runtime["SELECTED"] for runtime in targets(i)) for i in range(WORKERS)]
    assert own == [10, 10]
    assert sum(runtime["SELECTED"] for runtime in targets(None)) == 20
