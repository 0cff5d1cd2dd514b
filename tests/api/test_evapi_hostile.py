"""A real kamrouter process with evapi, fed what once ended it: a burst of TCP connections
reset before the router looked at them (``getpeername`` on a dead socket raised out of the
connection handler), and one netstring holding deeply nested JSON (RecursionError)."""
from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamrouter.modules.evapi.framing import encode_netstring
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy

TIMEOUT = 10.0


@pytest.fixture
def router(tmp_path: Path) -> Iterator[ProxyProcess]:
    port = free_port()
    proxy = kamrouter_proxy(tmp_path, free_port(), sections={
        "evapi": {"bind_addr": f"{LOOPBACK}:{port}"}})
    proxy.evapi_port = port  # type: ignore[attr-defined]
    proxy.start()
    yield proxy
    proxy.stop()


def rpc(proxy: ProxyProcess, method: str, *params: object) -> object:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(proxy.workdir / "run" / "kamrouter_rpc.sock"))
        sock.sendall(json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                                 "id": 1}).encode() + b"\n")
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, proxy.log_tail()
            buffer += chunk
    return json.loads(buffer)["result"]


def stat_value(proxy: ProxyProcess, name: str) -> int:
    return rpc(proxy, "stats.fetchn", name).get(name.replace(":", "."), 0)  # type: ignore


def evapi_connect(proxy: ProxyProcess) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, proxy.evapi_port), timeout=TIMEOUT)  # type: ignore
    return sock


def wait_for(condition, proxy: ProxyProcess, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert proxy.running(), proxy.log_tail()
        assert time.monotonic() < deadline, f"{what}\n{proxy.log_tail()}"
        time.sleep(0.02)


def test_burst_of_reset_connections_leaves_the_router_serving(router):
    for _ in range(3):
        burst = [evapi_connect(router) for _ in range(40)]
        for sock in burst:  # RST instead of FIN: the accepted socket is dead at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
    wait_for(lambda: stat_value(router, "evapi:clients") == 0, router, "clients still listed")
    controller = evapi_connect(router)
    wait_for(lambda: stat_value(router, "evapi:clients") == 1, router, "controller not listed")
    controller.close()
    assert router.running(), router.log_tail()


def test_deeply_nested_json_netstring_is_refused_and_counted(router):
    controller = evapi_connect(router)
    controller.sendall(encode_netstring(b'{"a": ' + b"[" * 15000 + b"]" * 15000 + b"}"))
    wait_for(lambda: stat_value(router, "evapi:refused_json_limit") == 1, router,
             "deep JSON not counted")
    controller.sendall(encode_netstring(b'{"n": ' + b"9" * 5000 + b"}"))
    wait_for(lambda: stat_value(router, "evapi:refused_json_limit") == 2, router,
             "long integer not counted")
    # The connection stays usable: the next message is received as usual.
    received = stat_value(router, "evapi:received")
    controller.sendall(encode_netstring(b'{"event": "hello"}'))
    wait_for(lambda: stat_value(router, "evapi:received") == received + 1, router,
             "message after refusal not received")
    controller.close()
