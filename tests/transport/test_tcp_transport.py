"""The TCP transport end to end: a real kamrouter process, plain Python sockets as peers.

Framing by Content-Length, replies on the request's own connection, one outgoing connection
per next hop, idle timeout, the connection cap, framing errors, RFC 5626 keep-alives and a
refused next hop. Every wait is bounded by a deadline; no assertion is about timing.
"""
from __future__ import annotations

import json
import re
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.wait import TIMEOUT, wait_until

WAIT = TIMEOUT  # upper bound of every wait for the router; a pass never takes that long
#: Between the parts of a message sent in pieces, so each part is its own TCP segment.
SEGMENT_GAP = 0.05

ANSWER_200 = '''
from kamrouter.script import sl

def request_route(msg):
    if msg.method != "ACK":
        sl.send_reply(msg, 200, "OK")
'''

RELAY_TCP = '''
from kamrouter.script import tm

def request_route(msg):
    msg.dst_uri = "sip:127.0.0.1:{port};transport=tcp"
    tm.relay(msg)
'''

_CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.I)


def cut_message(buf: bytes) -> tuple[bytes | None, bytes]:
    """The first whole message in ``buf`` (by Content-Length) and the rest."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None, buf
    length = _CONTENT_LENGTH.search(buf, 0, head_end + 2)
    total = head_end + 4 + (int(length.group(1)) if length else 0)
    if len(buf) < total:
        return None, buf
    return buf[:total], buf[total:]


def header(message: bytes, name: str) -> str:
    for line in message.decode().split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    raise AssertionError(f"no {name} header in {message!r}")


def status_line(message: bytes) -> str:
    return message.split(b"\r\n", 1)[0].decode()


def request(method: str, *, call_id: str, via: str, branch: str = "",
            body: bytes = b"", content_length: str | None = None, extra: str = "") -> bytes:
    """A request over TCP with ``via`` as the Via sent-by; ``content_length`` overrides the
    header value ("" leaves the header out)."""
    length = str(len(body)) if content_length is None else content_length
    length_line = f"Content-Length: {length}\r\n" if length != "" else ""
    return (f"{method} sip:bob@{LOOPBACK} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {via};branch={branch or 'z9hG4bK-' + call_id}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:alice@{LOOPBACK}>;tag=a1\r\n"
            f"To: <sip:bob@{LOOPBACK}>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n"
            f"{extra}{length_line}\r\n").encode() + body


class TcpPeer:
    """One TCP connection to the router: send raw bytes, read framed messages, see EOF."""

    def __init__(self, port: int, source: str = LOOPBACK) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=WAIT,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self.sock.getsockname()[1]
        self.buf = b""

    def request(self, method: str, call_id: str, *, body: bytes = b"",
                content_length: str | None = None, extra: str = "") -> bytes:
        # Our Via names the discard port, where nobody listens: replies can only come back
        # on this connection.
        return request(method, call_id=call_id, via=f"{LOOPBACK}:9", body=body,
                       content_length=content_length, extra=extra)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _receive(self, deadline: float) -> bytes:
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def read_message(self, wait: float = WAIT) -> bytes:
        deadline = time.monotonic() + wait
        while True:
            message, self.buf = cut_message(self.buf.lstrip(b"\r\n"))
            if message is not None:
                return message
            try:
                data = self._receive(deadline)
            except TimeoutError:
                raise AssertionError(
                    f"no whole message within {wait:g} s: {self.buf!r}") from None
            if not data:
                raise AssertionError(f"connection closed with {self.buf!r} unread")
            self.buf += data

    def final_reply(self, wait: float = WAIT) -> bytes:
        """The next reply that is not a 1xx."""
        while status_line(reply := self.read_message(wait)).startswith("SIP/2.0 1"):
            pass
        return reply

    def read_exact(self, size: int, wait: float = WAIT) -> bytes:
        deadline = time.monotonic() + wait
        while len(self.buf) < size:
            try:
                data = self._receive(deadline)
            except TimeoutError:
                break
            if not data:
                break
            self.buf += data
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def closed_by_router(self, wait: float = WAIT) -> bool:
        """Whether the router closes the connection within ``wait`` (data before is kept)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                data = self._receive(deadline)
            except TimeoutError:
                return False
            if not data:
                return True
            self.buf += data
        return False

    def reset(self) -> None:
        """Abort the connection: the router sees a reset, not an orderly close."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


class TcpUas:
    """A TCP listener (thread) answering every request 200 OK on the connection it came on."""

    def __init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.call_ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        buffers: dict[socket.socket, bytes] = {}
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    if sock is self.listener:
                        conn, _ = sock.accept()
                        self.accepted += 1
                        buffers[conn] = b""
                        selector.register(conn, selectors.EVENT_READ)
                        continue
                    data = sock.recv(65536)
                    if not data:
                        selector.unregister(sock)
                        del buffers[sock]
                        sock.close()
                        continue
                    buffers[sock] += data
                    while (message := cut_message(buffers[sock])[0]) is not None:
                        buffers[sock] = buffers[sock][len(message):]
                        self.call_ids.append(header(message, "Call-ID"))
                        sock.sendall(self._ok(message))
        finally:
            for conn in buffers:
                conn.close()
            selector.close()

    @staticmethod
    def _ok(req: bytes) -> bytes:
        lines = req.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
        copied = [line for line in lines
                  if line.split(":", 1)[0].strip().lower() in ("via", "from", "call-id", "cseq")]
        to = header(req, "To") + ";tag=uas"
        return ("SIP/2.0 200 OK\r\n" + "\r\n".join(copied) + f"\r\nTo: {to}\r\n"
                "Content-Length: 0\r\n\r\n").encode()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self.listener.close()


class Router:
    """A kamrouter process on udp+tcp:port, with its tcp statistics a kamcli call away."""

    def __init__(self, proxy: ProxyProcess) -> None:
        self.proxy = proxy
        self.port = proxy.port
        self.peers: list[TcpPeer] = []

    def connect(self, source: str = LOOPBACK) -> TcpPeer:
        peer = TcpPeer(self.port, source)
        self.peers.append(peer)
        return peer

    def tcp_stats(self) -> dict[str, int]:
        kamcli = Path(sys.executable).parent / "kamcli"
        result = subprocess.run(
            [str(kamcli), "-s", str(self.proxy.workdir / "run" / "kamrouter_rpc.sock"),
             "-o", "json", "stats", "tcp:"], capture_output=True, text=True, timeout=WAIT)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def wait_for_stat(self, name: str, wanted: int) -> dict[str, int]:
        """Poll the tcp statistics until ``tcp:name`` equals ``wanted``; the last reading."""
        readings: list[dict[str, int]] = []

        def reached() -> bool:
            readings.append(self.tcp_stats())
            return readings[-1][f"tcp:{name}"] == wanted

        wait_until(reached, f"tcp:{name} = {wanted}", timeout=WAIT, interval=0.05,
                   detail=lambda: str(readings[-1]))
        return readings[-1]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Router]]:
    routers: list[Router] = []

    def start_router(script: str, **tcp: float) -> Router:
        proxy = kamrouter_proxy(tmp_path / f"router{len(routers)}", free_port(), script=script,
                                sections={"tcp": tcp} if tcp else None)
        router = Router(proxy.start())
        routers.append(router)
        # The harness's readiness probe was a TCP connection: wait until it is gone.
        router.wait_for_stat("current_opened_connections", 0)
        return router

    yield start_router
    for router in routers:
        for peer in router.peers:
            peer.close()
        router.proxy.stop()
        assert "Traceback" not in router.proxy.log_tail(), router.proxy.log_tail()


@pytest.fixture
def uas() -> Iterator[TcpUas]:
    server = TcpUas()
    yield server
    server.close()


# == 1. framing and replies on the request's connection ========================================
def test_replies_come_back_on_the_request_connection(start) -> None:
    router = start(ANSWER_200)
    peer = router.connect()
    peer.send(peer.request("OPTIONS", "first"))
    reply = peer.read_message()
    assert status_line(reply) == "SIP/2.0 200 OK"
    assert header(reply, "Call-ID") == "first"
    peer.send(peer.request("OPTIONS", "second"))
    reply = peer.read_message()
    assert (status_line(reply), header(reply, "Call-ID")) == ("SIP/2.0 200 OK", "second")
    stats = router.tcp_stats()
    assert stats["tcp:current_opened_connections"] == 1
    assert stats["tcp:passive_open"] == 2  # the readiness probe and this peer


def test_a_message_split_over_segments_is_framed_whole(start) -> None:
    router = start(ANSWER_200)
    peer = router.connect()
    message = peer.request("MESSAGE", "split", body=b"hello, in pieces",
                           extra="Content-Type: text/plain\r\n")
    head_end = message.index(b"\r\n\r\n")
    length_at = message.index(b"Content-Length")
    # cut inside the Content-Length name, between the head's CRLF pairs, inside the body
    for start_at, end_at in ((0, length_at + 7), (length_at + 7, head_end + 2),
                             (head_end + 2, head_end + 9), (head_end + 9, len(message))):
        peer.send(message[start_at:end_at])
        time.sleep(SEGMENT_GAP)
    reply = peer.read_message()
    assert (status_line(reply), header(reply, "Call-ID")) == ("SIP/2.0 200 OK", "split")


def test_messages_sharing_a_segment_are_each_answered(start) -> None:
    router = start(ANSWER_200)
    peer = router.connect()
    third = peer.request("MESSAGE", "third", body=b"body of the third")
    peer.send(peer.request("OPTIONS", "first") + peer.request("OPTIONS", "second") + third[:30])
    replies = [peer.read_message(), peer.read_message()]
    time.sleep(SEGMENT_GAP)
    peer.send(third[30:])
    replies.append(peer.read_message())
    assert [header(reply, "Call-ID") for reply in replies] == ["first", "second", "third"]
    assert {status_line(reply) for reply in replies} == {"SIP/2.0 200 OK"}


# == 2. relaying to a TCP next hop ===============================================================
def test_requests_to_one_next_hop_share_one_outgoing_connection(start, uas: TcpUas) -> None:
    router = start(RELAY_TCP.format(port=uas.port))
    callers = [router.connect(), router.connect()]
    # Both at once: the second request arrives while the connection is still being opened.
    for index, caller in enumerate(callers):
        caller.send(caller.request("OPTIONS", f"call-{index}"))
    for index, caller in enumerate(callers):
        reply = caller.final_reply()
        assert (status_line(reply), header(reply, "Call-ID")) == ("SIP/2.0 200 OK",
                                                                  f"call-{index}")
    # And once the connection is up, a further request takes it as well.
    callers[0].send(callers[0].request("OPTIONS", "call-2"))
    reply = callers[0].final_reply()
    assert (status_line(reply), header(reply, "Call-ID")) == ("SIP/2.0 200 OK", "call-2")
    assert uas.accepted == 1
    assert sorted(uas.call_ids) == ["call-0", "call-1", "call-2"]
    stats = router.tcp_stats()
    assert stats["tcp:connect_success"] == 1
    assert stats["tcp:current_opened_connections"] == 3


# == 3. idle timeout ================================================================================
def test_idle_connections_close_after_connection_lifetime(start, uas: TcpUas) -> None:
    # 3 s: the check that both connections are open comes first, even on a loaded machine.
    router = start(RELAY_TCP.format(port=uas.port), connection_lifetime=3)
    peer = router.connect()
    peer.send(peer.request("OPTIONS", "before-idle"))
    assert status_line(peer.final_reply()) == "SIP/2.0 200 OK"
    assert router.tcp_stats()["tcp:current_opened_connections"] == 2  # peer's and the uas'
    assert peer.closed_by_router()
    stats = router.wait_for_stat("current_opened_connections", 0)
    assert stats["tcp:con_timeout"] == 2  # the incoming and the outgoing connection


# == 4. the connection cap ==========================================================================
def test_connections_over_max_connections_are_closed_at_once(start) -> None:
    router = start(ANSWER_200, max_connections=2)
    first, second = router.connect(), router.connect()
    for peer in (first, second):
        peer.send(peer.request("OPTIONS", f"in-{peer.port}"))
        assert status_line(peer.read_message()) == "SIP/2.0 200 OK"
    third = router.connect()
    assert third.closed_by_router()
    assert router.tcp_stats()["tcp:local_reject"] == 1
    first.reset()
    assert router.wait_for_stat("current_opened_connections", 1)["tcp:con_reset"] == 1
    fourth = router.connect()
    fourth.send(fourth.request("OPTIONS", "after-a-close"))
    assert status_line(fourth.read_message()) == "SIP/2.0 200 OK"
    assert router.tcp_stats()["tcp:local_reject"] == 1


# == 5. framing errors ==============================================================================
@pytest.mark.parametrize(("content_length", "body", "status"), [
    ("", b"", "400"),                   # missing: a stream cannot be framed without it
    ("-1", b"", "400"),                 # negative
    ("abc", b"", "400"),                # not a number
    (None, b"x" * 70000, "513"),        # over core.max_message_size (65535), body sent too
], ids=["missing", "negative", "not-a-number", "oversize"])
def test_framing_errors_are_answered_then_the_connection_closes(
        start, content_length: str | None, body: bytes, status: str) -> None:
    router = start(ANSWER_200)
    peer = router.connect()
    peer.send(peer.request("OPTIONS", "unframable", content_length=content_length, body=body))
    reply = peer.read_message()
    assert status_line(reply).startswith(f"SIP/2.0 {status} ")
    assert header(reply, "Call-ID") == "unframable"
    assert peer.closed_by_router()
    # the router is fine: a new connection is served
    other = router.connect()
    other.send(other.request("OPTIONS", "next"))
    assert status_line(other.read_message()) == "SIP/2.0 200 OK"


def test_an_endless_header_section_gets_513_then_the_connection_closes(start) -> None:
    router = start(ANSWER_200)
    peer = router.connect()
    head = peer.request("OPTIONS", "endless").split(b"\r\n\r\n")[0] + b"\r\n"
    try:
        peer.send(head + b"X-Filler: " + b"x" * 70000 + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the router stopped reading as soon as it had more than it accepts
    reply = peer.read_message()
    assert status_line(reply).startswith("SIP/2.0 513 Message Too Large")
    assert header(reply, "Call-ID") == "endless"
    assert peer.closed_by_router()


def test_a_message_trickling_in_is_cut_off_by_msg_read_timeout(start) -> None:
    """Slowloris: one byte at a time keeps the connection busy, never idle; the message
    deadline closes it all the same."""
    router = start(ANSWER_200, msg_read_timeout=0.5)
    peer = router.connect()
    data = peer.request("OPTIONS", "slow")
    closed = False
    for byte in data[:-1]:  # never the whole message, whatever the router's pace
        try:
            peer.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if peer.closed_by_router(wait=0.1):
            closed = True
            break
    assert closed, "the router kept a trickling connection open for the whole message"
    assert router.tcp_stats()["tcp:msg_read_timeout"] == 1
    other = router.connect()  # the router is fine, and keep-alives alone never time out
    other.send(b"\r\n")
    assert not other.closed_by_router(wait=1.0)
    other.send(other.request("OPTIONS", "after"))
    assert status_line(other.read_message()) == "SIP/2.0 200 OK"


def test_connections_per_ip_are_capped_beside_the_global_cap(start) -> None:
    router = start(ANSWER_200, max_connections_per_ip=2)
    first, second = router.connect(), router.connect()
    for peer in (first, second):
        peer.send(peer.request("OPTIONS", f"in-{peer.port}"))
        assert status_line(peer.read_message()) == "SIP/2.0 200 OK"
    third = router.connect()
    assert third.closed_by_router()
    assert router.tcp_stats()["tcp:ip_limit_reject"] == 1
    other = router.connect(source="127.0.0.2")  # another address still gets in
    other.send(other.request("OPTIONS", "other-ip"))
    assert status_line(other.read_message()) == "SIP/2.0 200 OK"


# == 6. RFC 5626 keep-alive =========================================================================
def test_crlf_keepalive_gets_a_crlf_pong_and_the_connection_stays_usable(start) -> None:
    router = start(ANSWER_200)
    peer = router.connect()
    peer.send(b"\r\n\r\n")
    assert peer.read_exact(2) == b"\r\n"
    peer.send(b"\r\n\r\n\r\n\r\n")  # two pings at once: two pongs
    assert peer.read_exact(4) == b"\r\n\r\n"
    peer.send(b"\r\n")  # a ping in two halves, then a request
    time.sleep(SEGMENT_GAP)
    peer.send(b"\r\n" + peer.request("OPTIONS", "after-ping"))
    assert peer.read_exact(2) == b"\r\n"
    reply = peer.read_message()
    assert (status_line(reply), header(reply, "Call-ID")) == ("SIP/2.0 200 OK", "after-ping")


# == 7. a next hop that refuses the connection ======================================================
def test_refused_next_hop_gets_a_prompt_error_reply(start) -> None:
    router = start(RELAY_TCP.format(port=free_port()))  # nobody listens there
    peer = router.connect()
    peer.send(peer.request("OPTIONS", "refused"))
    reply = peer.final_reply()
    assert status_line(reply).startswith("SIP/2.0 477 ")
    peer.send(peer.request("INVITE", "refused-invite"))
    reply = peer.final_reply()
    assert status_line(reply).startswith("SIP/2.0 477 ")
    assert router.tcp_stats()["tcp:connect_failed"] == 2


ALIAS_SCRIPT = '''
from kamrouter.script import sl, tm

def request_route(msg):
    if msg.method == "OPTIONS":
        sl.send_reply(msg, 200, "OK")
        return
    msg.dst_uri = "sip:127.0.0.1:{port};transport=tcp"
    tm.relay(msg)
'''


def test_a_via_alias_lets_requests_to_the_sender_reuse_its_connection(start) -> None:
    """RFC 5923: the peer's Via names where it listens (nothing does, here) with ;alias, so
    a request for that address goes over the connection the peer opened."""
    listen_port = free_port()
    router = start(ALIAS_SCRIPT.format(port=listen_port), accept_aliases=True)
    peer = router.connect()
    peer.send(request("OPTIONS", call_id="alias-1", via=f"{LOOPBACK}:{listen_port};alias"))
    assert status_line(peer.read_message()) == "SIP/2.0 200 OK"
    other = router.connect()
    other.send(other.request("MESSAGE", "alias-2"))
    relayed = peer.read_message()
    assert relayed.startswith(b"MESSAGE ") and header(relayed, "Call-ID") == "alias-2"
    assert router.tcp_stats()["tcp:connect_success"] == 0
