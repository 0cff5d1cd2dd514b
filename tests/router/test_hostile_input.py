"""A real kamrouter process fed hostile SIP: bytes that are not UTF-8 on error paths, over
UDP and TCP, must be answered (or counted) and must never stop the router."""
from __future__ import annotations

import json
import socket
import subprocess
import time
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


def reply_with_vias(vias: list[str]) -> bytes:
    return ("SIP/2.0 200 OK\r\n" + "".join(f"Via: {via}\r\n" for via in vias) +
            "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n"
            "Call-ID: forged\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


@pytest.mark.parametrize("count", [60, 1300])
def test_a_reply_whose_vias_all_name_the_router_is_never_sent_to_itself(router, count) -> None:
    """Within the Via limit the first self-send is refused; far beyond it the reply is
    refused as it is parsed. Either way the router handles it once, not once per Via."""
    own = f"SIP/2.0/UDP {LOOPBACK}:{router.port}"
    vias = [f"{own};branch=z9hG4bKself{n}" for n in range(count)] if count <= 70 else \
        [", ".join([own] * count)]  # one line, so 1,300 of them fit in a datagram
    data = reply_with_vias(vias)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, (LOOPBACK, router.port))
    stats = wait_for(router, "core:rcv_replies", "core:drops_to_own_socket",
                     "core:msg_limit_exceeded", "core:bad_msg_hdr",
                     until=lambda s: s["core:drops_to_own_socket"] + s["core:bad_msg_hdr"] > 0)
    if count <= 70:
        assert stats == {"core:rcv_replies": 1, "core:drops_to_own_socket": 1,
                         "core:msg_limit_exceeded": 0, "core:bad_msg_hdr": 0}
    else:
        assert stats == {"core:rcv_replies": 0, "core:drops_to_own_socket": 0,
                         "core:msg_limit_exceeded": 1, "core:bad_msg_hdr": 1}


def wait_for(proxy: ProxyProcess, *names: str, until, timeout: float = 10) -> dict[str, int]:
    """Poll the router's statistics until ``until(stats)``; the last reading."""
    deadline = time.monotonic() + timeout
    while not until(stats := rpc_stats(proxy, *names)):
        assert time.monotonic() < deadline, stats
        time.sleep(0.05)
    return stats


def test_a_request_with_too_many_vias_gets_400_naming_the_limit(router) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        vias = b"".join(b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKv%d\r\n" % n
                        for n in range(80))
        data = invite(port, b"").replace(b"Max-Forwards", vias + b"Max-Forwards", 1)
        sock.sendto(data, (LOOPBACK, router.port))
        assert status_line(sock.recv(65535)) == "SIP/2.0 400 Too Many Via Values (more than 70)"
    assert rpc_stats(router, "core:msg_limit_exceeded") == {"core:msg_limit_exceeded": 1}


def test_a_request_whose_top_via_does_not_parse_gets_400_at_its_source(router) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(5)
        data = invite(9, b"").replace(b"Via: SIP/2.0/UDP 127.0.0.1:9;",
                                      b"Via: SIP/2.0/UDP 127.0.0.1:999999;", 1)
        sock.sendto(data, (LOOPBACK, router.port))
        reply = status_line(sock.recv(65535))
    assert reply.startswith("SIP/2.0 400 Bad Via"), reply


@pytest.mark.parametrize(("ending", "expected"), [
    (b"Content-Length: 0\r\n", "SIP/2.0 200 OK"),
    (b"Content-Length: 0", "SIP/2.0 200 OK"),
    (b"", "SIP/2.0 200 OK"),
    (b"Content-Length: 4\r\n", "SIP/2.0 400 Malformed message: no empty line"),
], ids=["cl0-crlf", "cl0", "no-cl", "cl4"])
def test_a_datagram_without_the_empty_line(router, ending: bytes, expected: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        data = (f"OPTIONS sip:{LOOPBACK}:{router.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bKnoempty\r\n"
                f"From: <sip:a@{LOOPBACK}>;tag=1\r\nTo: <sip:b@{LOOPBACK}>\r\n"
                f"Call-ID: noempty\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n").encode()
        sock.sendto(data + ending, (LOOPBACK, router.port))
        assert status_line(sock.recv(65535)).startswith(expected)


def test_a_script_hook_that_exits_is_answered_500_and_the_router_goes_on(tmp_path) -> None:
    proxy = kamrouter_proxy(tmp_path / "exits", free_port(), script=(
        "import sys\n\ndef request_route(msg):\n    sys.exit(3)\n")).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((LOOPBACK, 0))
            sock.settimeout(5)
            for n in range(2):
                data = invite(sock.getsockname()[1], b"").replace(b"call\xff1", b"exit%d" % n)
                sock.sendto(data, (LOOPBACK, proxy.port))
                while status_line(reply := sock.recv(65535)).startswith("SIP/2.0 1"):
                    pass
                assert status_line(reply).startswith("SIP/2.0 500 "), reply
        assert proxy.running()
    finally:
        proxy.stop()
