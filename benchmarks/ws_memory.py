"""Memory per open WebSocket connection: for tcp: (the baseline), ws: and wss: in turn, a
fresh router on loopback, N connections (upgraded to SIP over WebSocket, each after one
exchange: an OPTIONS answered), the router's RSS before and after, per connection.

    .venv/bin/python benchmarks/ws_memory.py [--connections N]
"""
from __future__ import annotations

import argparse
import random
import socket
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.fuzzing import ws_frame, ws_upgrade  # noqa: E402
from support.ports import free_port  # noqa: E402

OPTIONS = ("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS h{n}.invalid;branch=z9hG4bK{n}\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag={n}\r\nTo: <sip:127.0.0.1>\r\n"
           "Call-ID: mem-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_until(sock: socket.socket | ssl.SSLSocket, marker: bytes) -> None:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"closed before {marker!r}: {data[:200]!r}")
        data += chunk


def open_connections(port: int, count: int, context: ssl.SSLContext | None,
                     websocket: bool = True) -> list[socket.socket]:
    rng = random.Random(1)
    opened = []
    for n in range(count):
        sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="localhost")
        options = OPTIONS.format(n=n).encode()
        if websocket:
            sock.sendall(ws_upgrade(f"127.0.0.1:{port}"))
            read_until(sock, b"\r\n\r\n")
            options = ws_frame(options, rng)
        sock.sendall(options)
        read_until(sock, b"SIP/2.0 200")
        opened.append(sock)
    return opened


def measure(work: Path, proto: str, count: int) -> None:
    sip, port = free_port(), free_port()
    (work / "kamrouter.toml").write_text(f"""
[core]
listen = ["udp:127.0.0.1:{sip}", "tcp:127.0.0.1:{sip}", "{proto}:127.0.0.1:{port}"]
[routing]
script = "routes.py"
[rpc]
run_dir = "{work}/run"
[tcp]
max_connections = {count + 20}
max_connections_per_ip = {count + 20}
connection_lifetime = 3600
[[tls.server]]
certificate = "server.pem"
private_key = "server.key"
""")
    router = subprocess.Popen([str(REPO / ".venv/bin/kamrouter"), "-c",
                               str(work / "kamrouter.toml")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", sip), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(work / "ca.pem")) \
            if proto == "wss" else None
        websocket = proto != "tcp"
        warm = open_connections(port, 10, context, websocket)  # first handshake, imports
        time.sleep(0.5)
        before = rss_kib(router.pid)
        conns = open_connections(port, count, context, websocket)
        time.sleep(0.5)
        after = rss_kib(router.pid)
        print(f"{proto}: {count} open connections: router RSS +{after - before} KiB = "
              f"{(after - before) / count:.1f} KiB per connection")
        for sock in conns + warm:
            sock.close()
    finally:
        router.terminate()
        router.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    count = parser.parse_args().connections
    work = Path(tempfile.mkdtemp(prefix="ws-memory-"))
    try:
        subprocess.run(["sh", str(REPO / "etc/tls/make-test-certs.sh"), str(work)],
                       check=True, capture_output=True)
        (work / "routes.py").write_text(
            "from kamrouter.script import sl\n\ndef request_route(msg):\n"
            "    sl.send_reply(msg, 200, 'OK')\n")
        for proto in ("tcp", "ws", "wss"):  # plain TCP: the connection table's own cost
            measure(work, proto, count)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
