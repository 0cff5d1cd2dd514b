"""What evapi costs in a router with two workers: a relay or a request (``async_relay``)
made in worker 0, which holds the evapi client, against one made in worker 1, which goes
over the link to worker 0 (kamrouter/modules/evapi/link.py) and, for a request, whose
answer comes back the same way.

A ``[core] workers = 2`` router answers OPTIONS from its script, with its pid as the
reason (so the client learns which worker serves a source port): ``X-Evapi: relay``
relays an event to the client first, ``X-Evapi: ask`` parks the request until the
client's answer. The client (a thread of this process) answers every event at once. For
each worker, ``--requests`` requests of each kind come from ``--ports`` source ports that
worker serves, one in flight per port; printed: both workers' CPU time per request
(``/proc/<pid>/stat``) and the p50/p99 time from sending a request to its 200.

    .venv/bin/python benchmarks/evapi_workers.py [--requests 5000] [--ports 4]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the e2e harness: tests/support

from kamrouter.modules.evapi.framing import NetstringDecoder, encode_netstring  # noqa: E402
from support.ports import LOOPBACK, free_port  # noqa: E402
from support.proxy import ProxyProcess, kamrouter_proxy  # noqa: E402

SCRIPT = '''\
import os

from kamrouter.script import evapi, sl, tm


async def request_route(msg):
    kind = msg.get_header("X-Evapi")
    if kind == "relay":
        evapi.relay({"event": "options", "call_id": msg.call_id})
    elif kind == "ask":
        tm.newtran(msg)
        if await evapi.async_relay(msg, {"event": "ask"}, timeout=5) is None:
            sl.send_reply(msg, 503, "No Answer")
            return
    sl.send_reply(msg, 200, str(os.getpid()))
'''
KINDS = ("none", "relay", "ask")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def options(port: int, source: int, n: int, kind: str) -> bytes:
    return (f"OPTIONS sip:{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{source};branch=z9hG4bK-{n}-{kind}\r\n"
            f"From: <sip:b@{LOOPBACK}>;tag=f{n}\r\nTo: <sip:{LOOPBACK}:{port}>\r\n"
            f"Call-ID: bench-{source}-{n}-{kind}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            f"X-Evapi: {kind}\r\nContent-Length: 0\r\n\r\n").encode()


def answer_everything(sock: socket.socket) -> None:
    """The evapi client: every event carrying an id is answered at once."""
    decoder = NetstringDecoder()
    try:
        while data := sock.recv(65536):
            answers = [encode_netstring(json.dumps({"id": event["id"]}).encode())
                       for event in map(json.loads, decoder.feed(data)) if "id" in event]
            if answers:
                sock.sendall(b"".join(answers))
    except OSError:  # closed by main() at the end
        pass


def sockets_of_each_worker(router: ProxyProcess, pids: list[int], ports: int
                           ) -> dict[int, list[socket.socket]]:
    found: dict[int, list[socket.socket]] = {pid: [] for pid in pids}
    for n in range(ports * 20):
        if all(len(found[pid]) >= ports for pid in pids):
            return found
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(10)
        sock.connect((LOOPBACK, router.port))
        sock.send(options(router.port, sock.getsockname()[1], n, "none"))
        pid = int(sock.recv(65535).split(b"\r\n", 1)[0].split()[2])
        if len(found[pid]) < ports:
            found[pid].append(sock)
        else:
            sock.close()
    raise SystemExit(f"no {ports} source ports for each worker in {ports * 20} tries")


def phase(router: ProxyProcess, pids: list[int], sockets: list[socket.socket],
          requests: int, kind: str) -> tuple[float, list[float]]:
    """CPU seconds of both workers and each request's time to its 200, in ms."""
    times = []
    before = sum(cpu_seconds(pid) for pid in pids)
    for start in range(0, requests, len(sockets)):
        sent = []
        for n, sock in enumerate(sockets, start):
            sent.append(time.perf_counter())
            sock.send(options(router.port, sock.getsockname()[1], n, kind))
        for sock, at in zip(sockets, sent):
            assert sock.recv(65535).startswith(b"SIP/2.0 200")
            times.append((time.perf_counter() - at) * 1000)
    return sum(cpu_seconds(pid) for pid in pids) - before, sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--ports", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evapi-workers-") as workdir:
        evapi_port = free_port()
        router = kamrouter_proxy(Path(workdir), free_port(), script=SCRIPT, sections={
            "core": {"workers": 2, "log_level": "warning"},
            "evapi": {"bind_addr": f"{LOOPBACK}:{evapi_port}"}})
        router.start()
        client = None
        try:
            pids = [entry["PID"] for entry in router.rpc("core.psx")[1:]]
            client = socket.create_connection((LOOPBACK, evapi_port), timeout=30)
            threading.Thread(target=answer_everything, args=(client,), daemon=True).start()
            time.sleep(0.5)  # worker 1 learns of the client
            by_worker = sockets_of_each_worker(router, pids, args.ports)
            results = {}
            for index, pid in enumerate(pids):
                phase(router, pids, by_worker[pid], 500, "ask")  # warm-up
                for kind in KINDS:
                    results[index, kind] = phase(router, pids, by_worker[pid],
                                                 args.requests, kind)
            counters = router.rpc("stats.fetchn", "evapi:")
        finally:
            if client is not None:
                client.close()
            router.stop()
    print(f"{args.requests} OPTIONS of each kind from {args.ports} ports per worker, "
          f"2 workers; CPU of both workers per request, time to the 200 (p50/p99)")
    for (index, kind), (cpu, times) in results.items():
        print(f"  worker {index}, {kind:5}: {cpu * 1e6 / args.requests:6.1f} µs CPU, "
              f"{times[len(times) // 2]:.2f}/{times[len(times) * 99 // 100]:.2f} ms")
    print(f"  evapi counters: {counters}")


if __name__ == "__main__":
    main()
