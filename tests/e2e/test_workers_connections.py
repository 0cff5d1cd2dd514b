"""``[core] workers = 2`` with a client on a connection: a browser (SIP over WebSocket,
``.invalid`` Contact, reachable only over its own connection) or a TCP phone (its Contact
the address of its connection, where nothing listens) registers through one worker, and a
UDP phone calls it from several source ports, so each worker routes some of the calls. The worker that does not hold the browser's connection hands its messages to the one
that does (kamrouter/transport/holders.py, the send hand-off), which writes them on it; the
browser's replies come back to the routing worker by their branch. Each call completes: 200,
ACK, a BYE either way, and a CANCEL; the router never opens a connection of its own.
"""
from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamrouter.sip import Request, Response, StreamFramer, parse
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.wsphone import WsPhone

from .test_workers import Peer, ack_for, header, lines_of, worker_rpc

ETC = Path(__file__).resolve().parents[2] / "etc"
WORKERS = 2
DOMAIN = "example.com"


@pytest.fixture
def router(tmp_path: Path) -> Iterator[tuple[ProxyProcess, int]]:
    """etc/examples/webrtc.py without authentication on udp+tcp and ws; its ws port."""
    port, ws_port = free_port(), free_port()
    proxy = kamrouter_proxy(tmp_path / "router", port, script=ETC / "examples" / "webrtc.py",
                            env={"KAMROUTER_AUTH": "off"}, sections={
                                "core": {"workers": WORKERS, "alias": [DOMAIN], "listen": [
                                    f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}",
                                    f"ws:{LOOPBACK}:{ws_port}"]},
                                "usrloc": {}, "registrar": {},
                                "auth": {"db_file": str(tmp_path / "subscriber.sqlite")}})
    proxy.start()
    try:
        yield proxy, ws_port
    finally:
        proxy.stop()
        assert "Traceback" not in proxy.log_tail(), proxy.log_tail()


class TcpPhone(WsPhone):
    """The same phone over a TCP connection of its own (RFC 3261 framing)."""

    def __enter__(self) -> TcpPhone:
        host, port = self.url.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=self.timeout)
        self.framer = StreamFramer()
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{LOOPBACK}:{self.port};transport=tcp>"

    def request(self, method: str, ruri: str, **kwargs: object) -> str:
        text = super().request(method, ruri, **kwargs)  # type: ignore[arg-type]
        return text.replace(f"SIP/2.0/WS {self.host}", f"SIP/2.0/TCP {LOOPBACK}:{self.port}")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def receive(self) -> Request | Response:
        while (data := self.framer.next_message()) is None:
            chunk = self.sock.recv(65536)
            assert chunk, "the router closed the connection"
            self.framer.feed(chunk)
        return parse(data)


def stat(proxy: ProxyProcess, index: int, name: str) -> int:
    values = worker_rpc(proxy, index, "stats.fetchn", name)
    return int(values[name.replace(":", ".", 1)])  # type: ignore[index]


def stats(proxy: ProxyProcess, name: str) -> list[int]:
    return [stat(proxy, i, name) for i in range(WORKERS)]


class Caller:
    """A UDP phone by hand: bob@example.com on a port of its own."""

    def __init__(self, proxy: ProxyProcess) -> None:
        self.peer = Peer()
        self.proxy = proxy

    def send(self, text: str) -> None:
        self.peer.send(text, self.proxy.port)

    def final(self) -> str:
        while True:
            message, _ = self.peer.receive()
            if message.startswith("SIP/2.0 ") and not message.startswith("SIP/2.0 1"):
                return message

    def invite(self, call: str) -> str:
        port = self.peer.port
        text = (f"INVITE sip:alice@{DOMAIN} SIP/2.0\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK-{call};rport\n"
                f"From: <sip:bob@{DOMAIN}>;tag=b-{call}\nTo: <sip:alice@{DOMAIN}>\n"
                f"Call-ID: {call}\nCSeq: 1 INVITE\nMax-Forwards: 70\n"
                f"Contact: <sip:bob@{LOOPBACK}:{port}>\nContent-Length: 0\n\n")
        self.send(text)
        return text

    def in_dialog(self, method: str, call: str, ok: str, cseq: int) -> str:
        """ACK or BYE of the dialog the 200 ``ok`` set up (its Record-Route reversed)."""
        target = header(ok, "Contact")[0].strip("<>").split(">")[0]
        routes = "".join(f"Route: {r}\n" for r in reversed(header(ok, "Record-Route")))
        text = (f"{method} {target} SIP/2.0\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{self.peer.port};branch=z9hG4bK-{call}-{method}"
                f";rport\n{routes}From: <sip:bob@{DOMAIN}>;tag=b-{call}\n"
                f"To: {header(ok, 'To')[0]}\nCall-ID: {call}\nCSeq: {cseq} {method}\n"
                "Max-Forwards: 70\nContent-Length: 0\n\n")
        self.send(text)
        return text

    def cancel(self, invite: str) -> None:
        lines = lines_of(invite)
        keep = [line for line in lines[1:] if line.lower().startswith(
            ("via:", "from:", "to:", "call-id:", "max-forwards:"))]
        self.send("\n".join([lines[0].replace("INVITE", "CANCEL", 1), *keep,
                             "CSeq: 1 CANCEL", "Content-Length: 0", "", ""]))

    def close(self) -> None:
        self.peer.close()


def answered_call(caller: Caller, alice: WsPhone, call: str) -> tuple[str, Request]:
    """INVITE, 180, 200, ACK: the 200 as the caller got it and the INVITE alice got."""
    caller.invite(call)
    invite = alice.answer()
    assert invite.ruri == alice.contact.strip("<>"), invite.ruri
    ok = caller.final()
    assert ok.startswith("SIP/2.0 200"), ok
    caller.in_dialog("ACK", call, ok, 1)
    alice.expect("ACK")
    return ok, invite


def caller_hangs_up(caller: Caller, alice: WsPhone, call: str) -> None:
    ok, _ = answered_call(caller, alice, call)
    caller.in_dialog("BYE", call, ok, 2)
    bye = alice.expect("BYE")
    alice.send(alice.reply(bye, 200, "OK"))
    final = caller.final()
    assert final.startswith("SIP/2.0 200") and "BYE" in header(final, "CSeq")[0], final


def browser_hangs_up(caller: Caller, alice: WsPhone, call: str) -> None:
    ok, invite = answered_call(caller, alice, call)
    to_tag = header(ok, "To")[0].split("tag=")[1]
    alice.send(alice.request("BYE", f"sip:bob@{LOOPBACK}:{caller.peer.port}", call_id=call,
                             cseq=2, from_tag=to_tag, to=f"sip:bob@{DOMAIN}",
                             to_tag=f"b-{call}", route=invite.get_all("Record-Route")))
    bye, _ = caller.peer.receive()
    assert bye.startswith("BYE"), bye
    caller.send(reply_to(bye, "200 OK"))
    final = alice.final()
    assert final.status == 200, final


def reply_to(request: str, status: str) -> str:
    keep = [line for line in lines_of(request)
            if line.lower().split(":")[0] in ("via", "from", "to", "call-id", "cseq")]
    return f"SIP/2.0 {status}\n" + "\n".join(keep) + "\nContent-Length: 0\n\n"


def cancelled_call(caller: Caller, alice: WsPhone, call: str) -> None:
    """INVITE, 180, CANCEL: 200 to the CANCEL from the router and from alice, 487, ACKs."""
    invite_text = caller.invite(call)
    invite = alice.receive()
    assert isinstance(invite, Request) and invite.method == "INVITE", invite
    tag = secrets.token_hex(4)
    alice.send(alice.reply(invite, 180, "Ringing", tag))
    ringing, _ = caller.peer.receive()
    while not ringing.startswith("SIP/2.0 180"):  # the 100 first
        ringing, _ = caller.peer.receive()
    caller.cancel(invite_text)
    cancel = alice.expect("CANCEL")
    alice.send(alice.reply(cancel, 200, "OK", tag))
    alice.send(alice.reply(invite, 487, "Request Terminated", tag))
    finals = {header(final, "CSeq")[0]: final for final in (caller.final(), caller.final())}
    assert sorted(finals) == ["1 CANCEL", "1 INVITE"], finals
    assert finals["1 INVITE"].startswith("SIP/2.0 487"), finals
    caller.send(ack_for(invite_text, finals["1 INVITE"]))  # hop by hop: absorbed
    ack = alice.expect("ACK")  # the router's own, hop by hop
    assert ack.call_id == call


@pytest.mark.parametrize("transport", ["ws", "tcp"])
def test_a_udp_phone_calls_a_client_whose_connection_another_worker_holds(
        router: tuple[ProxyProcess, int], transport: str) -> None:
    proxy, ws_port = router
    opened = sum(stats(proxy, "tcp:connect_success")) + sum(stats(proxy, "tcp:connect_failed"))
    phone = WsPhone(f"ws://{LOOPBACK}:{ws_port}/", "alice", password=None) \
        if transport == "ws" else TcpPhone(f"{LOOPBACK}:{proxy.port}", "alice", password=None)
    with phone as alice:
        reply = alice.register()
        assert isinstance(reply, Response) and reply.status == 200, reply
        (holder,) = [i for i, n in enumerate(stats(proxy, "tcp:current_opened_connections"))
                     if n == 1]
        routed = [0] * WORKERS
        for n in range(16):  # new caller ports until each worker routed calls of one
            caller = Caller(proxy)
            try:
                before = stats(proxy, "core:rcv_requests_invite")
                caller_hangs_up(caller, alice, f"hangup-{n}-{secrets.token_hex(3)}")
                browser_hangs_up(caller, alice, f"byeback-{n}-{secrets.token_hex(3)}")
                cancelled_call(caller, alice, f"cancel-{n}-{secrets.token_hex(3)}")
                after = stats(proxy, "core:rcv_requests_invite")
                (worker,) = [i for i in range(WORKERS) if after[i] > before[i]]
                routed[worker] += 1
            finally:
                caller.close()
            if all(routed):
                break
        assert all(routed), f"16 caller ports all reached one worker: {routed}"
    other = 1 - holder
    assert stat(proxy, other, "core:handoff_sent_to_connection") >= 6  # INVITE, ACK, CANCEL...
    assert stat(proxy, holder, "core:handoff_sent") >= 2  # the browser's replies, by branch
    assert sum(stats(proxy, "core:handoff_dropped")) == 0
    assert sum(stats(proxy, "tcp:connect_success")) + sum(
        stats(proxy, "tcp:connect_failed")) == opened, "a worker opened a connection"
