"""What a routing script's htable write costs a router with two workers (the state bus,
kamrouter/modules/bus.py), against the same requests without the write.

A ``[core] workers = 2`` router answers OPTIONS with 200 from its script; a request with
``X-Write`` also sets one htable item, which the bus takes to the other worker. The client
sends ``--requests`` requests of each kind from ``--ports`` source ports (so the kernel
spreads them over both workers), ``--ports`` in flight at a time, and reads both workers'
CPU time (``/proc/<pid>/stat``) around each phase; then it checks that the other worker
holds the last round's items.

    .venv/bin/python benchmarks/state_bus_router.py [--requests 20000] [--ports 20]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the e2e harness: tests/support

from support.ports import LOOPBACK, free_port  # noqa: E402
from support.proxy import ProxyProcess, kamrouter_proxy  # noqa: E402
from support.rpc import rpc_call  # noqa: E402

SCRIPT = '''\
from kamrouter.script import htable, sl


def request_route(msg):
    if msg.get_header("X-Write"):
        htable.set("t", msg.get_header("X-Write"), msg.src_port)
    sl.send_reply(msg, 200, "OK")
'''
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def options(port: int, source: int, n: int, write: bool) -> bytes:
    extra = f"X-Write: k{n % 1000}\r\n" if write else ""
    return (f"OPTIONS sip:{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{source};branch=z9hG4bK-{n}-{int(write)}\r\n"
            f"From: <sip:b@{LOOPBACK}>;tag=f{n}\r\nTo: <sip:{LOOPBACK}:{port}>\r\n"
            f"Call-ID: bench-{n}-{int(write)}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            f"{extra}Content-Length: 0\r\n\r\n").encode()


def phase(router: ProxyProcess, pids: list[int], sockets: list[socket.socket],
          requests: int, write: bool) -> float:
    """CPU seconds of both workers for ``requests`` requests."""
    before = sum(cpu_seconds(pid) for pid in pids)
    for start in range(0, requests, len(sockets)):
        for n, sock in enumerate(sockets, start):
            sock.send(options(router.port, sock.getsockname()[1], n, write))
        for sock in sockets:
            assert sock.recv(65535).startswith(b"SIP/2.0 200")
    return sum(cpu_seconds(pid) for pid in pids) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--ports", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="state-bus-router-") as workdir:
        router = kamrouter_proxy(Path(workdir), free_port(), script=SCRIPT, sections={
            "core": {"workers": 2, "log_level": "warning"}, "htable": [{"name": "t"}]})
        router.start()
        sockets = []
        try:
            pids = [entry["PID"] for entry in router.rpc("core.psx")[1:]]
            for _ in range(args.ports):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.settimeout(10)
                sock.connect((LOOPBACK, router.port))
                sockets.append(sock)
            phase(router, pids, sockets, 2000, True)  # warm-up
            plain = phase(router, pids, sockets, args.requests, False)
            written = phase(router, pids, sockets, args.requests, True)
            stats = [rpc_call(Path(workdir) / "run" / f"worker-{i}.sock", "stats.fetchn",
                              "bus:") for i in range(2)]
            items = [rpc_call(Path(workdir) / "run" / f"worker-{i}.sock", "htable.stats")
                     for i in range(2)]
        finally:
            for sock in sockets:
                sock.close()
            router.stop()
    per = 1e6 / args.requests
    print(f"{args.requests} requests each way from {args.ports} ports, 2 workers")
    print(f"  CPU per request: {plain * per:.1f} µs without a write, {written * per:.1f} µs "
          f"with one htable write ({(written - plain) * per:+.1f} µs)")
    for i, counters in enumerate(stats):
        sent, datagrams = counters["bus.sent_messages"], counters["bus.sent_datagrams"]
        print(f"  worker {i}: {sent} writes published in {datagrams} datagrams "
              f"({sent / max(1, datagrams):.1f} each), {counters['bus.received_messages']} "
              f"applied, {counters['bus.lost']} lost, htable items {items[i]}")


if __name__ == "__main__":
    main()
