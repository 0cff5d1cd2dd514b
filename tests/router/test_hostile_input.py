"""A real kamrouter process fed hostile SIP: bytes that are not UTF-8 on error paths, over
UDP and TCP, must be answered (or counted) and must never stop the router."""
from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy

def invite(port: int, extra: bytes, cseq: bytes = b"1 INVITE", proto: bytes = b"UDP") -> bytes:
    return (b"INVITE sip:bob@127.0.0.1:9 SIP/2.0\r\n"
            b"Via: SIP/2.0/" + proto + b" 127.0.0.1:%d;branch=z9hG4bKhostile\r\n" % port +
            b"From: \"Al\xffce\" <sip:alice@127.0.0.1>;tag=a\xff1\r\n"
            b"To: <sip:bob@127.0.0.1>\r\nCall-ID: call\xff1@host\r\nCSeq: " + cseq + b"\r\n"
            b"Max-Forwards: 70\r\n" + extra + b"Content-Length: 0\r\n\r\n")


def cases(port: int, proto: bytes) -> list[bytes]:
    """0xff in Call-ID and the From display name, plus one error each."""
    return [invite(port, b"Garbage line without colon\r\n", proto=proto),
            invite(port, b"Call-ID: second\xff\r\n", proto=proto),
            invite(port, b"", cseq=b"99999999999 INVITE", proto=proto)]


def status_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


@pytest.fixture
def router(tmp_path: Path) -> Iterator[ProxyProcess]:
    proxy = kamrouter_proxy(tmp_path / "router", free_port()).start()
    yield proxy
    proxy.stop()


def rpc_stats(proxy: ProxyProcess, *names: str) -> dict[str, int]:
    run = proxy.workdir / "run" / "kamrouter_rpc.sock"
    result = subprocess.run([str(Path(proxy.argv[0]).parent / "kamcli"), "-s", str(run),
                             "-o", "json", "stats", "all"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    return {name: stats.get(name, 0) for name in names}


def test_non_utf8_bytes_on_error_paths_over_udp_get_400_and_router_lives(router) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        for data in cases(port, b"UDP"):
            sock.sendto(data, (LOOPBACK, router.port))
            reply = sock.recv(65535)
            assert status_line(reply).startswith("SIP/2.0 400 "), reply
            # the reply carries the received bytes back unchanged
            assert b"Call-ID: call\xff1@host\r\n" in reply
    assert router.running(), router.log_tail()
    assert "Traceback" not in router.log_tail()


def test_non_utf8_bytes_on_error_paths_over_tcp_get_400_and_router_lives(router) -> None:
    for n, data in enumerate(cases(0, b"TCP")):
        with socket.create_connection((LOOPBACK, router.port), timeout=5) as conn:
            conn.sendall(data)
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = conn.recv(65535)
                assert chunk, f"case {n}: connection closed without a reply"
                reply += chunk
            assert status_line(reply).startswith("SIP/2.0 400 "), reply
    assert router.running(), router.log_tail()
    assert "Traceback" not in router.log_tail()
