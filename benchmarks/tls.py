#!/usr/bin/env python3
"""TLS handshakes per second and memory per open TLS connection, kamrouter beside Kamailio.

For each router (kamrouter, Kamailio 5.6 with its tls module and 2 workers) on a fresh
process with a ``tls:`` socket on 127.0.0.1:

- handshakes: ``--threads`` Python ssl clients connect, complete a handshake, send one
  OPTIONS with Max-Forwards 0 (both routers answer 483 themselves), read it and close, for ``--duration`` seconds; reported:
  handshakes/s and the router's CPU ms per handshake (the clients share the two cores, so
  the rate is that of the whole setup; the CPU is the router's own);
- memory: ``--connections`` TLS connections opened and kept open (each after one OPTIONS);
  reported: the router's resident memory growth (all its processes, /proc/<pid>/status
  VmRSS, plus Kamailio's shared memory in use from ``core.shmmem``) divided by the count.

    .venv/bin/python benchmarks/tls.py
    .venv/bin/python benchmarks/tls.py --connections 2000 --duration 10
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from cps import KAMAILIO_CFG, Tls, make_certs, process_tree_cpu  # noqa: E402
from support.ports import free_port  # noqa: E402
from support.proxy import ProxyProcess, kamailio_proxy, kamrouter_proxy  # noqa: E402

LOOPBACK = "127.0.0.1"


def options(port: int, n: int) -> bytes:
    return (f"OPTIONS sip:{LOOPBACK}:{port};transport=tls SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS {LOOPBACK}:5999;branch=z9hG4bK-bench-{n}\r\nMax-Forwards: 0\r\n"
            f"From: <sip:bench@{LOOPBACK}>;tag={n}\r\nTo: <sip:{LOOPBACK}:{port}>\r\n"
            f"Call-ID: tls-bench-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def exchange(tls: ssl.SSLSocket, port: int, n: int) -> None:
    tls.sendall(options(port, n))
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = tls.recv(65535)
        if not chunk:
            raise ConnectionError("closed before the reply")
        reply += chunk


def handshakes(port: int, threads: int, duration: float) -> int:
    context = client_context()
    done = [0] * threads
    failed = [0] * threads
    stop = time.monotonic() + duration

    def run(index: int) -> None:
        n = index * 10_000_000
        while time.monotonic() < stop:
            n += 1
            try:
                with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
                    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    with context.wrap_socket(raw) as tls:
                        exchange(tls, port, n)
            except OSError:
                failed[index] += 1
                continue
            done[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=duration + 60)
    if sum(failed):
        print(f"  {sum(failed)} handshakes failed (not counted)", file=sys.stderr)
    return sum(done)


def resident_kb(pid: int) -> int:
    """VmRSS of ``pid`` and its descendants, in KB."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(entry.name) == pid or int(fields.get("PPid", "0").strip()) == pid:
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total


def shm_used_kb(proxy: ProxyProcess) -> int:
    """Kamailio's shared memory in use (its TLS state lives there); 0 for kamrouter."""
    if proxy.kind != "kamailio":
        return 0
    sock = proxy.workdir / "run" / "kamailio_rpc.sock"
    out = subprocess.run([str(Path(sys.executable).parent / "kamcli"), "-s", str(sock), "-o",
                          "json", "rpc", "core.shmmem"], capture_output=True, text=True,
                         timeout=30)
    try:
        return int(json.loads(out.stdout)["used"]) // 1024
    except (ValueError, KeyError):
        return 0


def memory_per_connection(proxy: ProxyProcess, port: int, count: int) -> float | None:
    """Bytes per held connection; None when the router stopped answering meanwhile."""
    context = client_context()
    time.sleep(1)
    before = resident_kb(proxy.pid) + shm_used_kb(proxy)
    held = []
    try:
        for n in range(count):
            raw = socket.create_connection((LOOPBACK, port), timeout=10)
            held.append(raw)
            tls = context.wrap_socket(raw)
            held.append(tls)
            exchange(tls, port, n)
        time.sleep(1)
        after = resident_kb(proxy.pid) + shm_used_kb(proxy)
    except OSError as exc:
        print(f"  {proxy.kind} stopped answering after {len(held) // 2} connections: {exc}",
              file=sys.stderr)
        return None
    finally:
        for sock in held:
            sock.close()
    return (after - before) * 1024 / count


def crashed(proxy: ProxyProcess) -> bool:
    """Kamailio logs a worker that died by a signal (its tls module with OpenSSL 3)."""
    return "exited by a signal" in proxy.log_path.read_text(errors="replace")


def start(kind: str, workdir: Path, tls: Tls) -> tuple[ProxyProcess, int]:
    port, tls_port = free_port(), free_port()
    if kind == "kamrouter":
        sections = tls.kamrouter_sections(port, tls_port)
        # every client is 127.0.0.1: lift the per-address limit (256) with the total
        sections["tcp"] = {"max_connections": 20000, "max_connections_per_ip": 20000}
        return kamrouter_proxy(workdir, port, sections=sections).start(), tls_port
    proxy = kamailio_proxy(workdir, port, cfg=KAMAILIO_CFG, children=2, shm_mb=1024,
                           listens=[f"tls:{LOOPBACK}:{tls_port}"],
                           defines={"WITH_TLS": 1, "TLS_CONFIG": str(tls.kamailio_config(workdir))})
    return proxy.start(), tls_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kamrouter-tls-") as tmp:
        tls = Tls(make_certs(Path(tmp)))
        for kind in ("kamrouter", "kamailio"):
            proxy, tls_port = start(kind, Path(tmp) / kind, tls)
            try:
                cpu = process_tree_cpu(proxy.pid)
                count = handshakes(tls_port, args.threads, args.duration)
                cpu = process_tree_cpu(proxy.pid) - cpu
                per_conn = memory_per_connection(proxy, tls_port, args.connections)
                died = crashed(proxy)
            finally:
                proxy.stop()
            rows.append((kind, count / args.duration, cpu / max(count, 1) * 1000, per_conn,
                         died))
            print(f"  {kind}: {count} handshakes in {args.duration:g} s"
                  + (", a worker crashed" if died else ""), file=sys.stderr)
    print(f"\nTLS over 127.0.0.1, {args.threads} client threads for {args.duration:g} s, "
          f"{args.connections} connections held (Kamailio: 2 workers, tls module):\n")
    print("| router | handshakes/s | router CPU ms / handshake | memory per open TLS "
          "connection | crashed |")
    print("|---|---:|---:|---:|---|")
    for kind, rate, cpu_ms, per_conn, died in rows:
        memory = "-" if per_conn is None else f"{per_conn / 1024:.1f} KB"
        print(f"| {kind} | {rate:,.0f} | {cpu_ms:.2f} | {memory} | {'yes' if died else 'no'} |")
    ours, theirs = rows
    print(f"\nkamailio / kamrouter: {theirs[1] / max(ours[1], 1e-9):.2f}x the handshake rate")
    if ours[3] and theirs[3]:
        print(f"kamrouter / kamailio: {ours[3] / theirs[3]:.2f}x the memory per connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
