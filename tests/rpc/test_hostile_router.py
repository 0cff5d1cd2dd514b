"""A real kamrouter process fed hostile JSON-RPC documents on every control transport.

Each document once ended the process: an integer of 5,000 digits (Python's int-from-string
limit raised ValueError past the parse-error handling) and an array nested 20,000 deep
(RecursionError). Now each is refused with a Parse error naming the limit, counted in
``rpc:refused_json_limit``, and the router keeps answering.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy

HUGE_INTEGER = b'{"jsonrpc":"2.0","method":"core.echo","params":[' + b"7" * 5000 + b'],"id":1}'
DEEP_ARRAY = (b'{"jsonrpc":"2.0","method":"core.echo","params":' + b"[" * 20000 + b"]" * 20000
              + b',"id":2}')
TIMEOUT = 10.0


@pytest.fixture
def router(tmp_path: Path) -> Iterator[ProxyProcess]:
    replies = tmp_path / "replies"
    replies.mkdir()
    proxy = kamrouter_proxy(tmp_path, free_port(), sections={"rpc": {
        "dgram_socket": "rpc.dgram", "fifo": "rpc.fifo", "fifo_reply_dir": str(replies),
        "http": f"{LOOPBACK}:{free_port()}"}})
    proxy.start()
    yield proxy
    proxy.stop()


def _run_dir(proxy: ProxyProcess) -> Path:
    return proxy.workdir / "run"


def stream_call(proxy: ProxyProcess, request: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(_run_dir(proxy) / "kamrouter_rpc.sock"))
        sock.sendall(request + b"\n")
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, f"router closed the stream without a reply\n{proxy.log_tail()}"
            buffer += chunk
    return json.loads(buffer)


def dgram_call(proxy: ProxyProcess, request: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("")
        sock.settimeout(TIMEOUT)
        sock.sendto(request, str(_run_dir(proxy) / "rpc.dgram"))
        return json.loads(sock.recv(1 << 20))


def fifo_send(proxy: ProxyProcess, request: bytes) -> None:
    fd = os.open(_run_dir(proxy) / "rpc.fifo", os.O_WRONLY)
    try:
        os.write(fd, request + b"\n")
    finally:
        os.close(fd)


def fifo_call(proxy: ProxyProcess, request: dict | bytes) -> dict:
    """Send ``request`` (a dict gets reply_name test_reply.fifo) and read the reply."""
    reply_path = proxy.workdir / "replies" / "test_reply.fifo"
    os.mkfifo(reply_path, 0o600)
    try:
        reader = os.open(reply_path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            fifo_send(proxy, request if isinstance(request, bytes) else json.dumps(
                {**request, "reply_name": reply_path.name}).encode())
            deadline = time.monotonic() + TIMEOUT
            buffer = b""
            while time.monotonic() < deadline:
                try:
                    buffer += os.read(reader, 65536)
                except BlockingIOError:
                    pass
                if buffer.endswith(b"\n"):
                    return json.loads(buffer)
                time.sleep(0.01)
            raise AssertionError(f"no FIFO reply within {TIMEOUT}s\n{proxy.log_tail()}")
        finally:
            os.close(reader)
    finally:
        os.unlink(reply_path)


def http_call(proxy: ProxyProcess, request: bytes) -> dict:
    config = (proxy.workdir / "kamrouter.toml").read_text()
    address = config.split('http = "', 1)[1].split('"', 1)[0]
    response = httpx.post(f"http://{address}/RPC", content=request, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def stat_value(proxy: ProxyProcess, name: str) -> int:
    reply = stream_call(proxy, json.dumps(
        {"jsonrpc": "2.0", "method": "stats.fetchn", "params": [name], "id": 9}).encode())
    return reply["result"].get(name.replace(":", "."), 0)


def assert_alive(proxy: ProxyProcess) -> None:
    assert proxy.running(), proxy.log_tail()
    reply = stream_call(proxy, b'{"jsonrpc":"2.0","method":"core.version","id":3}')
    assert reply["result"].startswith("kamrouter"), reply


def assert_refused(reply: dict, limit: str) -> None:
    assert reply["error"]["code"] == -32700, reply
    assert limit in reply["error"]["data"], reply


@pytest.mark.parametrize("call", [stream_call, dgram_call, http_call],
                         ids=["stream", "dgram", "http"])
def test_huge_integer_and_deep_array_are_refused_with_the_limit(router, call):
    assert_refused(call(router, HUGE_INTEGER), "max_json_digits")
    assert_alive(router)
    assert_refused(call(router, DEEP_ARRAY), "max_json_depth")
    assert_alive(router)
    assert stat_value(router, "rpc:refused_json_limit") == 2


def test_fifo_refuses_both_documents_and_keeps_serving(router):
    # Without a reply_name there is nobody to answer: the refusals are counted.
    fifo_send(router, HUGE_INTEGER)
    fifo_send(router, DEEP_ARRAY)
    deadline = time.monotonic() + TIMEOUT
    while stat_value(router, "rpc:refused_json_limit") < 2:
        assert router.running(), router.log_tail()
        assert time.monotonic() < deadline, router.log_tail()
        time.sleep(0.05)
    assert_alive(router)
    # With one, the Parse error goes to the reply FIFO it names.
    named = b'{"reply_name":"test_reply.fifo",' + HUGE_INTEGER[1:]
    assert_refused(fifo_call(router, named), "max_json_digits")
    named = b'{"reply_name":"test_reply.fifo",' + DEEP_ARRAY[1:]
    assert_refused(fifo_call(router, named), "max_json_depth")
    reply = fifo_call(router, {"jsonrpc": "2.0", "method": "core.echo", "params": [1], "id": 4})
    assert reply["result"] == [1]


def test_run_dir_is_private(router):
    mode = os.lstat(_run_dir(router)).st_mode
    assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700
