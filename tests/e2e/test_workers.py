"""``[core] workers = 2``: a supervisor and two worker processes sharing the SIP listeners
(kamrouter/core/supervisor.py, kamrouter/transport/shared.py), with real sipp peers and raw
SIP from this test where the exact messages matter.

A peer's datagrams reach the worker the kernel's SO_REUSEPORT hash of their 4-tuple picks,
so which worker serves a caller is found out, not assumed: each worker's own control socket
(``run/worker-N.sock``) tells what it received. What reaches the other worker than the one
it belongs to is handed over (kamrouter/pipeline/handoff.py, ``run/worker-N.handoff``).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.rpc import RpcFailed, rpc_call
from support.sipp import Sipp, Transport
from support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")

WORKERS = 2


#: The HTTP RPC port of each router these tests start, by its work directory.
HTTP_PORTS: dict[Path, int] = {}


def start_router(workdir: Path) -> ProxyProcess:
    http = HTTP_PORTS[workdir] = free_port()
    proxy = kamrouter_proxy(workdir, free_port(), sections={
        "core": {"workers": WORKERS}, "rpc": {"http": f"127.0.0.1:{http}"}})
    proxy.start()
    return proxy


@pytest.fixture(scope="module")
def shared_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """One router for the tests that leave it as they found it (starting one costs
    seconds on a loaded machine)."""
    proxy = start_router(tmp_path_factory.mktemp("workers") / "router")
    yield proxy
    proxy.stop()


@pytest.fixture
def router(shared_router: ProxyProcess) -> ProxyProcess:
    assert shared_router.running(), shared_router.log_tail()
    return shared_router


@pytest.fixture
def own_router(tmp_path: Path) -> Iterator[ProxyProcess]:
    """A router of the test's own (the test kills or stops processes of it)."""
    proxy = start_router(tmp_path / "router")
    yield proxy
    proxy.stop()


def worker_rpc(proxy: ProxyProcess, index: int, method: str, *params: object) -> object:
    return rpc_call(proxy.workdir / "run" / f"worker-{index}.sock", method, *params)


def received(proxy: ProxyProcess) -> list[int]:
    """Requests each worker has received so far."""
    return [int(worker_rpc(proxy, i, "stats.fetchn", "core:rcv_requests")  # type: ignore[call-overload]
                ["core.rcv_requests"]) for i in range(WORKERS)]


def worker_pids(proxy: ProxyProcess) -> list[int]:
    return [entry["PID"] for entry in proxy.rpc("core.psx")[1:]]


def sipp_peer(tmp_path: Path, name: str, scenario: str, *, port: int | None = None,
              to: str | None = None, proxy: ProxyProcess | None = None, calls: int = 1,
              rate: float | None = None, transport: Transport = "udp") -> Sipp:
    return Sipp(name, scenario, tmp_path, port=port or free_port(), remote=to,
                outbound_proxy=proxy.address if proxy else None, calls=calls, rate=rate,
                timeout_s=30, trace_messages=calls == 1, transport=transport)


# -- raw SIP: what the worker sends and absorbs -------------------------------------------------

class Peer:
    """A UDP socket of this test that speaks SIP by hand (bounded receives)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]

    def send(self, text: str, port: int) -> None:
        self.sock.sendto(text.replace("\n", "\r\n").encode(), (LOOPBACK, port))

    def receive(self) -> tuple[str, tuple[str, int]]:
        data, source = self.sock.recvfrom(65535)
        return data.decode(), source

    def nothing_more(self, seconds: float) -> bool:
        """True when nothing arrives within ``seconds`` (used only after every message
        that is due has been seen: it proves an absence, it does not time a presence)."""
        self.sock.settimeout(seconds)
        try:
            self.sock.recvfrom(65535)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(20)
        return False

    def close(self) -> None:
        self.sock.close()


def header(message: str, name: str) -> list[str]:
    prefix = name.lower() + ":"
    return [line.split(":", 1)[1].strip() for line in message.split("\r\n")
            if line.lower().startswith(prefix)]


def invite(caller: Peer, callee: Peer, call: str, method: str = "INVITE") -> str:
    return (f"{method} sip:bob@{LOOPBACK}:{callee.port} SIP/2.0\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{caller.port};branch=z9hG4bK-{call};rport\n"
            f"From: <sip:alice@{LOOPBACK}>;tag=a-{call}\nTo: <sip:bob@{LOOPBACK}>\n"
            f"Call-ID: {call}\nCSeq: 1 {method}\nMax-Forwards: 70\n"
            f"Contact: <sip:alice@{LOOPBACK}:{caller.port}>\nContent-Length: 0\n\n")


def reply(request: str, status: str, to_tag: str = "b1", pad: int = 0) -> str:
    """The reply to ``request``; ``pad``: that many bytes of a header before the Vias."""
    keep = [line for line in request.split("\r\n")
            if line.lower().split(":")[0] in ("via", "from", "call-id", "cseq")]
    to = header(request, "To")[0]
    padding = f"X-Padding: {'p' * pad}\n" if pad else ""
    return (f"SIP/2.0 {status}\n{padding}" + "\n".join(keep) + f"\nTo: {to};tag={to_tag}\n"
            "Content-Length: 0\n\n")


def lines_of(message: str) -> list[str]:
    """Header lines of a message as written here (LF) or received (CRLF)."""
    return message.replace("\r\n", "\n").split("\n")


def ack_for(request: str, final: str) -> str:
    lines = lines_of(request)
    first = lines[0].replace("INVITE", "ACK", 1)
    to = header(final, "To")[0]
    keep = [line for line in lines[1:] if line.lower().startswith(("via:", "from:", "call-id:",
                                                                     "max-forwards:"))]
    return "\n".join([first, *keep, f"To: {to}", "CSeq: 1 ACK", "Content-Length: 0", "", ""])


def uas_transactions(proxy: ProxyProcess) -> int:
    return sum(int(worker_rpc(proxy, i, "stats.fetchn", "tmx:UAS_transactions")  # type: ignore[call-overload]
                   ["tmx.UAS_transactions"]) for i in range(WORKERS))


def next_new(callee: Peer, branch: str) -> tuple[str, tuple[str, int]]:
    """The callee's next message that is not the router's own retransmission of the INVITE
    (its T1 timer may fire before the 180 gets there on a loaded machine)."""
    while True:
        message, source = callee.receive()
        if not (message.startswith("INVITE") and branch in header(message, "Via")[0]):
            return message, source


def one_call_absorbing_retransmissions(router: ProxyProcess, call: str, pad: int = 0) -> None:
    """INVITE, its retransmission, 180, 486, the caller's ACK: one transaction in the
    workers; the callee sees the INVITE from the listener (named in the Via and the
    Record-Route), the router's ACK to the 486 from there too and nothing new; the caller
    gets 180 again for its retransmission. The callee answers from its own port, which the
    kernel may hash to the other worker: the replies reach the right one, steered by the
    kernel, or handed over when the Via is more than ``pad`` bytes in."""
    caller, callee = Peer(), Peer()
    transactions = uas_transactions(router)
    try:
        request = invite(caller, callee, call)
        caller.send(request, router.port)
        forwarded, sent_from = callee.receive()
        assert forwarded.startswith("INVITE"), forwarded
        top_via = header(forwarded, "Via")[0]
        assert top_via.startswith(f"SIP/2.0/UDP {router.address};branch=z9hG4bKw"), top_via
        assert sent_from == (LOOPBACK, router.port), "a worker forwards from the listener"
        (record_route,) = header(forwarded, "Record-Route")
        assert record_route.startswith(f"<sip:{router.address};lr"), record_route
        assert ";kw=" not in record_route, "an all-UDP dialog: any worker takes it"
        branch = top_via.split("branch=")[1].split(";")[0]
        # 100 Trying to the caller, then the callee rings.
        assert caller.receive()[0].startswith("SIP/2.0 100")
        callee.sock.sendto(reply(forwarded, "180 Ringing", pad=pad).replace(
            "\n", "\r\n").encode(), sent_from)
        assert caller.receive()[0].startswith("SIP/2.0 180")
        # The caller retransmits: absorbed by the worker (the 180 again), not relayed.
        caller.send(request, router.port)
        assert caller.receive()[0].startswith("SIP/2.0 180")
        busy = reply(forwarded, "486 Busy Here", pad=pad)
        callee.sock.sendto(busy.replace("\n", "\r\n").encode(), sent_from)
        ack, ack_from = next_new(callee, branch)
        assert ack.startswith("ACK") and ack_from == sent_from, ack
        assert branch in header(ack, "Via")[0], ack
        final, _ = caller.receive()
        assert final.startswith("SIP/2.0 486"), final
        caller.send(ack_for(request, final), router.port)  # hop by hop: absorbed
        assert callee.nothing_more(1.0), "the caller's ACK (or the INVITE) was relayed"
        assert uas_transactions(router) == transactions + 1
    finally:
        caller.close()
        callee.close()


def test_each_worker_absorbs_retransmissions_and_acks_of_its_calls(
        router: ProxyProcess) -> None:
    served = set()
    for n in range(32):  # new caller ports until both workers have served a call
        before = received(router)
        one_call_absorbing_retransmissions(router, f"w{n}")
        after = received(router)
        served |= {i for i in range(WORKERS) if after[i] > before[i]}
        if len(served) == WORKERS:
            break
    assert served == set(range(WORKERS)), f"calls reached only workers {served}"


# -- sipp through two workers -------------------------------------------------------------------

def run_calls(tmp_path: Path, router: ProxyProcess, name: str, uas_scenario: str,
              uac_scenario: str, callers: int = 4, calls: int = 1,
              transport: Transport = "udp") -> None:
    """``callers`` sipp UACs (each from its own port, over ``transport``) against one UAS
    each (over UDP)."""
    pairs = []
    for n in range(callers):
        uas = sipp_peer(tmp_path, f"{name}-uas{n}", uas_scenario, calls=calls).start()
        pairs.append((uas, sipp_peer(tmp_path, f"{name}-uac{n}", uac_scenario,
                                     to=uas.address, proxy=router, calls=calls, rate=10,
                                     transport=transport)))
    for uas, _ in pairs:
        uas.wait_listening()
    for _, uac in pairs:
        uac.start()
    results = [peer.wait() for pair in pairs for peer in (pair[1], pair[0])]
    failed = [result.report() for result in results if not result.complete]
    assert not failed, "\n".join(failed) + "\n" + router.log_tail()


def test_calls_and_cancels_through_two_workers(tmp_path: Path, router: ProxyProcess) -> None:
    run_calls(tmp_path, router, "call", "uas.xml", "uac.xml", calls=5)
    run_calls(tmp_path, router, "cancel", "uas_ring_until_cancel.xml", "uac_cancel.xml")
    # TCP callers: each connection stays with the worker that accepted it, and the replies
    # of the call go back over it.
    run_calls(tmp_path, router, "tcp", "uas.xml", "uac.xml", calls=2, transport="tcp")
    served = received(router)
    assert sum(served) > 0
    # One control socket: kamcli's methods reach worker 0, psx lists every process.
    assert router.rpc("core.version").startswith("kamrouter")
    assert len(router.rpc("core.psx")) == 1 + WORKERS
    assert router.rpc("core.reload_script") == "Ok. Script reloaded."
    methods = router.rpc("system.listMethods")
    assert {"core.ps", "core.psx", "tm.stats"} <= set(methods) and methods == sorted(methods)
    assert "supervisor" in router.rpc("system.methodHelp", "core.psx")
    assert "transaction" in router.rpc("system.methodHelp", "tm.stats")


def test_statistics_through_the_main_socket_sum_the_workers_counters(
        router: ProxyProcess) -> None:
    for n in range(4):  # a few callers, so that (very likely) both workers count something
        one_call_absorbing_retransmissions(router, f"stats{n}")
    each = [worker_rpc(router, i, "stats.fetchn", "core:", "shmem:total_size")
            for i in range(WORKERS)]
    summed = router.rpc("stats.fetchn", "core:", "shmem:total_size")
    assert summed["core.rcv_requests"] == sum(w["core.rcv_requests"] for w in each)  # type: ignore[index]
    # The machine's memory, which every worker sees: once.
    assert summed["shmem.total_size"] == each[0]["shmem.total_size"]  # type: ignore[index]
    lines = router.rpc("stats.get_statistics", "core:rcv_requests")
    assert lines == [f"core:rcv_requests = {summed['core.rcv_requests']}"]
    tm = router.rpc("tm.stats")
    assert tm["total"] == sum(worker_rpc(router, i, "tm.stats")["total"]  # type: ignore[index]
                              for i in range(WORKERS))
    router.rpc("stats.reset_statistics", "core:rcv_requests")
    assert received(router) == [0] * WORKERS


def test_metrics_over_http_are_the_whole_router_s(router: ProxyProcess) -> None:
    one_call_absorbing_retransmissions(router, "metrics")
    url = f"http://127.0.0.1:{HTTP_PORTS[router.workdir]}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        text = answer.read().decode()
    summed = router.rpc("stats.fetchn", "core:rcv_requests", "shmem:total_size")
    assert "# TYPE kamrouter_core_rcv_requests_total counter" in text
    assert "# TYPE kamrouter_shmem_total_size gauge" in text
    # Summed over the workers as stats.fetchn sums it (no SIP request came in between).
    assert f"kamrouter_core_rcv_requests_total {summed['core.rcv_requests']}" in text
    assert f"kamrouter_shmem_total_size {summed['shmem.total_size']}" in text


def test_gauges_of_each_worker_add_up_through_the_main_socket(router: ProxyProcess) -> None:
    def opened(path: Path | None = None) -> int:
        values = rpc_call(path or router.workdir / "run" / "kamrouter_rpc.sock",
                          "stats.fetchn", "tcp:current_opened_connections")
        return int(values["tcp.current_opened_connections"])

    def each() -> int:
        return sum(opened(router.workdir / "run" / f"worker-{i}.sock") for i in range(WORKERS))

    # Connections the kernel hands to either worker (8: all in one is unlikely): each
    # counts its own.
    before = each()
    connections = [socket.create_connection((LOOPBACK, router.port), timeout=10)
                   for _ in range(8)]
    try:
        wait_until(lambda: opened() == each() >= before + 8, "the workers counting them",
                   detail=router.log_tail)
    finally:
        for connection in connections:
            connection.close()


def test_an_operators_change_reaches_every_worker(router: ProxyProcess) -> None:
    def banned(index: int) -> list[str]:
        listed = worker_rpc(router, index, "pike.list")
        return [entry["ip_addr"] for entry in listed["list"]]  # type: ignore[index]

    router.rpc("pike.ban", "192.0.2.66", 600)  # in worker 0, which publishes it (the bus)
    wait_until(lambda: all("192.0.2.66" in banned(i) for i in range(WORKERS)), "the ban")
    router.rpc("pike.unban", "192.0.2.66")
    wait_until(lambda: not any("192.0.2.66" in banned(i) for i in range(WORKERS)), "unban")
    with pytest.raises(RpcFailed) as failed:  # nowhere to apply it: worker 0's error
        router.rpc("pike.unban", "192.0.2.66")
    assert failed.value.error["code"] == 404


def test_a_killed_worker_is_restarted_while_the_other_carries_on_then_sigterm_stops_all(
        tmp_path: Path, own_router: ProxyProcess) -> None:
    router = own_router
    uas = sipp_peer(tmp_path, "uas", "uas.xml", calls=60).start()
    uas.wait_listening()
    # Which worker serves this caller port? One call tells.
    port = free_port()
    before = received(router)
    first = sipp_peer(tmp_path, "probe", "uac.xml", port=port, to=uas.address, proxy=router)
    assert first.start().wait().complete
    after = received(router)
    (serving,) = [i for i in range(WORKERS) if after[i] > before[i]]
    victim = 1 - serving
    pids = worker_pids(router)
    # Calls from that port go on while the other worker is killed and restarted.
    long_run = sipp_peer(tmp_path, "uac", "uac.xml", port=port, to=uas.address,
                         proxy=router, calls=59, rate=20).start()
    os.kill(pids[victim], signal.SIGKILL)
    wait_until(lambda: worker_pids(router)[victim] not in (0, pids[victim])
               and "starting" not in router.rpc("core.psx")[victim + 1]["DSC"],
               f"worker {victim} restarted", detail=router.log_tail)
    result = long_run.wait()
    assert result.complete, result.report() + router.log_tail()
    assert uas.wait().complete
    assert worker_pids(router)[serving] == pids[serving], "the other worker was untouched"
    assert f"worker {victim} (pid {pids[victim]}) was killed by SIGKILL" in router.log_tail()
    # The new worker serves: calls from several ports all succeed.
    run_calls(tmp_path, router, "after", "uas.xml", "uac.xml")
    # SIGTERM stops every worker, the restarted one too.
    pids = worker_pids(router)
    router.stop()
    assert not router.running()
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), f"worker pid {pid} gone")
    log = router.log_tail()
    assert "received SIGTERM, stopping 2 workers" in log
    assert "did not stop" not in log, log  # each worker stopped by itself, none was killed


def test_sighup_reloads_the_script_in_every_worker(router: ProxyProcess) -> None:
    def reloads(index: int) -> int:
        return router.log_path.read_text().count(
            f"worker-{index} kamrouter: routing script reloaded")

    before = [reloads(index) for index in range(WORKERS)]
    os.kill(router.pid, signal.SIGHUP)
    for index in range(WORKERS):
        wait_until(lambda index=index: reloads(index) > before[index],
                   f"worker {index} reloaded", detail=router.log_tail)


def test_workers_stop_when_the_supervisor_is_killed(own_router: ProxyProcess) -> None:
    router = own_router
    pids = worker_pids(router)
    os.kill(router.pid, signal.SIGKILL)
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), f"worker pid {pid} gone",
                   detail=router.log_tail)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


# -- the hand-off between workers ---------------------------------------------------------------

def handoff_counts(proxy: ProxyProcess, index: int | None = None) -> dict[str, int]:
    """``core:handoff_*`` of the whole router (the supervisor's sums), or of one worker."""
    names = [f"core:handoff_{kind}" for kind in ("sent", "received", "dropped")]
    lines = (proxy.rpc("stats.get_statistics", *names) if index is None
             else worker_rpc(proxy, index, "stats.get_statistics", *names))
    values = dict(line.split(" = ") for line in lines)  # type: ignore[union-attr]
    return {name.rpartition("_")[2]: int(values[name]) for name in names}


def worker_of(router: ProxyProcess, peer: Peer) -> int:
    """The worker the kernel gives this peer's datagrams to (one OPTIONS tells)."""
    before = received(router)
    peer.send(f"OPTIONS sip:{router.address} SIP/2.0\n"
              f"Via: SIP/2.0/UDP {LOOPBACK}:{peer.port};branch=z9hG4bK-o{peer.port};rport\n"
              f"From: <sip:probe@{LOOPBACK}>;tag=p\nTo: <sip:{router.address}>\n"
              f"Call-ID: probe-{peer.port}\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n"
              "Content-Length: 0\n\n", router.port)
    assert peer.receive()[0].startswith("SIP/2.0 200")
    after = received(router)
    (index,) = [i for i in range(WORKERS) if after[i] > before[i]]
    return index


def peer_on_other_worker(router: ProxyProcess, than: int) -> Peer:
    for _ in range(32):  # a new port each time: the hash picks the other worker half the time
        peer = Peer()
        if worker_of(router, peer) != than:
            return peer
        peer.close()
    raise AssertionError("32 source ports all reached one worker")


def cancel_for(request: str) -> str:
    lines = lines_of(request)
    keep = [line for line in lines[1:] if line.lower().startswith(
        ("via:", "from:", "to:", "call-id:", "max-forwards:"))]
    first = lines[0].replace("INVITE", "CANCEL", 1)
    return "\n".join([first, *keep, "CSeq: 1 CANCEL", "Content-Length: 0", "", ""])


def test_a_cancel_from_another_port_reaches_the_worker_of_its_invite(
        tmp_path: Path, router: ProxyProcess) -> None:
    """A UA that sends its CANCEL from another port than its INVITE (the kernel gives it to
    the other worker): handed to the INVITE's worker, which cancels the call (200 to the
    CANCEL, 487 to the INVITE); the callee is sipp."""
    caller = Peer()
    serving = worker_of(router, caller)
    canceller = peer_on_other_worker(router, serving)
    callee = sipp_peer(tmp_path, "ringing", "uas_ring_until_cancel.xml").start()
    try:
        callee.wait_listening()
        before = handoff_counts(router, 1 - serving)
        request = invite(caller, callee, "cancel-other-port")  # type: ignore[arg-type]
        caller.send(request, router.port)
        assert caller.receive()[0].startswith("SIP/2.0 100")
        assert caller.receive()[0].startswith("SIP/2.0 180")
        canceller.send(cancel_for(request), router.port)
        answer, _ = canceller.receive()
        assert answer.startswith("SIP/2.0 200") and "CSeq: 1 CANCEL" in answer, answer
        final, _ = caller.receive()
        assert final.startswith("SIP/2.0 487"), final
        caller.send(ack_for(request, final), router.port)
        result = callee.wait()
        assert result.complete, result.report() + router.log_tail()
        assert handoff_counts(router, 1 - serving)["sent"] > before["sent"]
    finally:
        caller.close()
        canceller.close()


def test_replies_reach_the_worker_that_forwarded_the_request(router: ProxyProcess) -> None:
    """The callee answers from a port the kernel hashes to the other worker than the one
    that forwarded the INVITE from the listener, with a header before the Via that puts
    the branch mark out of the kernel's sight (kamrouter/transport/steering.py): its
    replies are handed over (the call completes, one_call_absorbing_retransmissions checks
    every message)."""
    before = handoff_counts(router)
    for n in range(32):  # a new callee port per call, until one hashes to the other worker
        each = [handoff_counts(router, i) for i in range(WORKERS)]
        served = received(router)
        one_call_absorbing_retransmissions(router, f"handed{n}", pad=400)
        now = received(router)
        (forwarder,) = [i for i in range(WORKERS) if now[i] > served[i]]
        took = handoff_counts(router, forwarder)["received"] - each[forwarder]["received"]
        passed = handoff_counts(router, 1 - forwarder)["sent"] - each[1 - forwarder]["sent"]
        if took:
            assert took == passed >= 2, (took, passed)  # the 180 and the 486 at least
            break
    else:
        raise AssertionError("no callee port of 32 hashed to the other worker")
    after = handoff_counts(router)
    assert after["sent"] - before["sent"] == after["received"] - before["received"]
    assert after["dropped"] == before["dropped"]


def test_a_reply_naming_a_worker_that_does_not_exist_is_dropped(router: ProxyProcess) -> None:
    """A forged branch (worker 9 of 2) is counted and dropped, not forwarded to the next Via,
    and the router goes on routing. (Garbage on a hand-off socket itself, which only the
    router's processes can write to: tests/transport/test_handoff_socket.py.)"""
    before = handoff_counts(router)["dropped"]
    upstream = Peer()  # the reply's next Via: it gets the reply only if it is not dropped
    try:
        upstream.send(f"SIP/2.0 200 OK\n"
                      f"Via: SIP/2.0/UDP {router.address};branch=z9hG4bKw9-forged.1.0\n"
                      f"Via: SIP/2.0/UDP {LOOPBACK}:{upstream.port};branch=z9hG4bK-up\n"
                      f"From: <sip:a@{LOOPBACK}>;tag=a\nTo: <sip:b@{LOOPBACK}>;tag=b\n"
                      "Call-ID: forged\nCSeq: 1 INVITE\nContent-Length: 0\n\n", router.port)
        wait_until(lambda: handoff_counts(router)["dropped"] == before + 1,
                   "the drop counted", detail=router.log_tail)
        assert upstream.nothing_more(0.5), "the forged reply was forwarded"
    finally:
        upstream.close()
    assert router.running()
    one_call_absorbing_retransmissions(router, "after-garbage")


def test_a_callee_s_bye_to_a_tcp_caller_goes_to_the_worker_holding_its_connection(
        tmp_path: Path, router: ProxyProcess) -> None:
    """A TCP caller's connection stays in the worker that accepted it, which names itself in
    its Record-Route entries (``;kw=``); the UDP callee's BYE, given by the kernel to the
    other worker, is handed to that one and goes over the caller's connection: the router
    opens no connection of its own."""
    def opened() -> int:
        counts = router.rpc("stats.fetchn", "tcp:connect_success", "tcp:connect_failed")
        return int(counts["tcp.connect_success"]) + int(counts["tcp.connect_failed"])

    for n in range(16):  # new callee ports, until one hashes to the other worker
        probe = Peer()
        callee_worker, port = worker_of(router, probe), probe.port
        probe.close()  # sipp takes the port the probe has shown the way of
        before, connections = handoff_counts(router, callee_worker), opened()
        callee = sipp_peer(tmp_path, f"bye-uas{n}", "uas_sends_bye.xml", port=port).start()
        callee.wait_listening()
        caller = sipp_peer(tmp_path, f"bye-uac{n}", "uac_bye_received.xml",
                           to=callee.address, proxy=router, transport="tcp").start()
        results = [caller.wait(), callee.wait()]
        failed = [result.report() for result in results if not result.complete]
        assert not failed, "\n".join(failed) + router.log_tail()
        (invite,) = results[1].received("INVITE")
        marks = {route.partition(";kw=")[2][:1] for route in invite.headers("Record-Route")}
        (holder,) = marks
        (bye,) = results[0].received("BYE")
        assert bye.transport == "TCP"
        assert opened() == connections, "a worker opened a connection to the caller"
        if int(holder) != callee_worker:
            assert handoff_counts(router, callee_worker)["sent"] >= before["sent"] + 1
            return
    raise AssertionError("no callee port of 16 hashed to the other worker")


def test_the_kernel_gives_each_reply_to_the_worker_that_forwarded_the_request(
        router: ProxyProcess) -> None:
    """The same calls with the Via where repliers put it: the steering program hands them
    to the forwarding worker's socket, whichever worker the callee's port hashes to, so no
    worker passes one on."""
    before = handoff_counts(router)
    for n in range(8):  # new callee ports: some hash to the other worker
        one_call_absorbing_retransmissions(router, f"steered{n}")
    assert handoff_counts(router) == before
