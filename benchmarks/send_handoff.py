"""What the send hand-off costs (kamrouter/transport/holders.py): a router with two workers,
a browser-like client on WebSocket (held by one worker), and UDP callers whose MESSAGEs
the kernel gives to one worker or the other.

The client (a thread of this process) registers over WebSocket and answers every MESSAGE
with 200. Callers on source ports that hash to the worker holding the connection cost no
hand-off per transaction; those that hash to the other worker cost two (the MESSAGE handed
to the holder to send, its 200 handed back by the branch). Both workers' CPU time
(``/proc/<pid>/stat``) is read around each phase of ``--requests`` transactions, ``--ports``
in flight at a time; the difference per transaction, halved, is the cost of one hand-off.

    .venv/bin/python benchmarks/send_handoff.py [--requests 3000] [--ports 8] [--runs 2]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the e2e harness: tests/support
sys.path.insert(0, str(REPO))

from websockets.sync.client import connect  # noqa: E402

from support.ports import LOOPBACK, free_port  # noqa: E402
from support.proxy import ProxyProcess, kamrouter_proxy  # noqa: E402
from support.rpc import rpc_call  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
DOMAIN = "example.com"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def worker_stat(router: ProxyProcess, index: int, name: str) -> int:
    values = rpc_call(router.workdir / "run" / f"worker-{index}.sock", "stats.fetchn", name)
    return int(values[name.replace(":", ".", 1)])  # type: ignore[index]


def answer_messages(url: str, registered: threading.Event, stop: threading.Event) -> None:
    """The browser: register, then answer each MESSAGE 200 until ``stop``."""
    host = "bench.invalid"
    with connect(url, subprotocols=["sip"]) as ws:  # type: ignore[list-item]
        ws.send(f"REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/WS {host};branch=z9hG4bKreg\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=r\r\n"
                f"To: <sip:alice@{DOMAIN}>\r\nCall-ID: reg\r\nCSeq: 1 REGISTER\r\n"
                f"Contact: <sip:alice@{host};transport=ws>\r\nExpires: 600\r\n"
                "Content-Length: 0\r\n\r\n")
        assert str(ws.recv(timeout=10)).startswith("SIP/2.0 200")
        registered.set()
        while not stop.is_set():
            try:
                text = str(ws.recv(timeout=0.2))
            except TimeoutError:
                continue
            head = text.split("\r\n\r\n", 1)[0].split("\r\n")
            keep = [line for line in head[1:] if line.split(":", 1)[0].lower()
                    in ("via", "from", "to", "call-id", "cseq")]
            ws.send("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")


def message(port: int, source: int, n: int) -> bytes:
    return (f"MESSAGE sip:alice@{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{source};branch=z9hG4bK-m{source}-{n};rport\r\n"
            f"From: <sip:bob@{DOMAIN}>;tag=f{n}\r\nTo: <sip:alice@{DOMAIN}>\r\n"
            f"Call-ID: bench-{source}-{n}\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def callers_by_worker(router: ProxyProcess, wanted: int) -> list[list[socket.socket]]:
    """``wanted`` UDP sockets for each worker (one MESSAGE each tells which it reaches)."""
    found: list[list[socket.socket]] = [[], []]
    for _ in range(200):
        if all(len(group) >= wanted for group in found):
            return found
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOOPBACK, 0))
        sock.settimeout(10)
        before = [worker_stat(router, i, "core:rcv_requests") for i in (0, 1)]
        sock.sendto(message(router.port, sock.getsockname()[1], 0), (LOOPBACK, router.port))
        while not sock.recv(65535).startswith(b"SIP/2.0 200"):
            pass
        after = [worker_stat(router, i, "core:rcv_requests") for i in (0, 1)]
        index = 0 if after[0] > before[0] else 1
        if len(found[index]) < wanted:
            found[index].append(sock)
        else:
            sock.close()
    raise SystemExit("200 source ports did not give enough callers for both workers")


def phase(router: ProxyProcess, pids: list[int], sockets: list[socket.socket],
          requests: int, first: int) -> float:
    """CPU seconds of both workers for ``requests`` MESSAGE transactions, numbered from
    ``first`` (a number seen before would be a retransmission)."""
    before = sum(cpu_seconds(pid) for pid in pids)
    for start in range(first, first + requests, len(sockets)):
        for n, sock in enumerate(sockets, start):
            sock.sendto(message(router.port, sock.getsockname()[1], n), (LOOPBACK, router.port))
        for sock in sockets:
            while not sock.recv(65535).startswith(b"SIP/2.0 200"):
                pass
    return sum(cpu_seconds(pid) for pid in pids) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--ports", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port, ws_port = free_port(), free_port()
        router = kamrouter_proxy(
            Path(tmp) / "router", port, script=REPO / "etc" / "examples" / "webrtc.py",
            env={"KAMROUTER_AUTH": "off"}, sections={
                "core": {"workers": 2, "alias": [DOMAIN], "log_level": "warning", "listen": [
                    f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}",
                    f"ws:{LOOPBACK}:{ws_port}"]},
                "usrloc": {}, "registrar": {},
                "auth": {"db_file": str(Path(tmp) / "subscriber.sqlite")}})
        router.start()
        registered, stop = threading.Event(), threading.Event()
        browser = threading.Thread(target=answer_messages, daemon=True,
                                   args=(f"ws://{LOOPBACK}:{ws_port}/", registered, stop))
        browser.start()
        try:
            assert registered.wait(10), router.log_tail()
            pids = [entry["PID"] for entry in router.rpc("core.psx")[1:]]
            holder = next(i for i in (0, 1) if worker_stat(
                router, i, "websocket:ws_current_connections"))
            groups = callers_by_worker(router, args.ports)
            for run in range(args.runs):
                costs = {}
                for index in (holder, 1 - holder):
                    sent = worker_stat(router, 1 - holder, "core:handoff_sent_to_connection")
                    seconds = phase(router, pids, groups[index], args.requests,
                                    1 + run * args.requests)
                    handed = worker_stat(router, 1 - holder,
                                         "core:handoff_sent_to_connection") - sent
                    costs[index] = seconds / args.requests * 1e6
                    print(f"run {run + 1}: callers on worker {index} "
                          f"({'holds' if index == holder else 'does not hold'} the "
                          f"connection): {costs[index]:.0f} us CPU per transaction, "
                          f"{handed / args.requests:.2f} send hand-offs per transaction")
                extra = costs[1 - holder] - costs[holder]
                print(f"run {run + 1}: two hand-offs add {extra:.0f} us: "
                      f"{extra / 2:.0f} us per hand-off")
            dropped = sum(worker_stat(router, i, "core:handoff_dropped") for i in (0, 1))
            print(f"hand-offs dropped: {dropped}")
        finally:
            stop.set()
            browser.join(5)
            router.stop()


if __name__ == "__main__":
    main()
