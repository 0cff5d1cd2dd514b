"""SIP over WebSocket (RFC 7118) through a real router running the shipped etc/webrtc.toml
(etc/examples/webrtc.py, on free ports): a browser-like phone whose host is .invalid
registers over WS and WSS (with digest authentication, or with it off), calls a UDP sipp
phone and is called by one over its own connection (the registrar keeps the connection with
the binding; RFC 5626 flow tokens in Record-Route route the in-dialog requests); the upgrade
checks (sip subprotocol, Origin allow-list) and the message size limit; and an edge proxy
in front of a registrar reaching the browser through its Path with a flow token."""
from __future__ import annotations

import json
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support.fuzzing import ws_upgrade
from tests.support.ports import LOOPBACK, free_port
from tests.support.proxy import (ProxyProcess, kamailio_proxy, kamrouter_binary,
                                 kamrouter_proxy, toml_document)
from tests.support.sipp import Sipp
from tests.support.wait import wait_until
from tests.support.wsphone import SDP, WsPhone

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "https://localhost"
ETC = REPO / "etc"
CALLER_XML = str(ETC / "sipp" / "caller.xml")
REGISTER_XML = str(ETC / "sipp" / "register.xml")
UAS_XML = str(REPO / "tests" / "scenarios" / "uas.xml")
UAC_XML = str(REPO / "tests" / "scenarios" / "uac.xml")


class WebrtcRouter:
    """etc/webrtc.toml as shipped, on free ports, certificates and databases of the test."""

    def __init__(self, workdir: Path, certs: Path, *, auth: bool = True,
                 **websocket: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port, self.ws_port, self.wss_port = free_port(), free_port(), free_port()
        document = tomllib.loads((ETC / "webrtc.toml").read_text())
        document["core"]["listen"] = [f"udp:{LOOPBACK}:{self.port}",
                                      f"tcp:{LOOPBACK}:{self.port}",
                                      f"ws:{LOOPBACK}:{self.ws_port}",
                                      f"wss:{LOOPBACK}:{self.wss_port}"]
        document["routing"]["script"] = str(ETC / "examples" / "webrtc.py")
        document["auth"]["db_file"] = str(workdir / "subscriber.sqlite")
        document["websocket"].update(websocket)
        document["rpc"] = {"run_dir": str(workdir / "run")}
        servers = document.pop("tls")["server"]
        text = toml_document(document)
        for server in servers:
            text += (f'\n[[tls.server]]\ncertificate = "{certs / "server.pem"}"\n'
                     f'private_key = "{certs / "server.key"}"\n')
            assert server["certificate"].endswith("server.pem")
        (workdir / "kamrouter.toml").write_text(text)
        env = {"KAMROUTER_AUTH": "on" if auth else "off"}
        self.process = ProxyProcess("kamrouter", [kamrouter_binary(), "-c",
                                                  str(workdir / "kamrouter.toml")],
                                    self.port, workdir, env)
        self.certs = certs

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.ws_port}/"

    @property
    def wss_url(self) -> str:
        return f"wss://localhost:{self.wss_port}/"

    def phone(self, user: str, *, secure: bool = False, **kwargs: Any) -> WsPhone:
        return WsPhone(self.wss_url if secure else self.ws_url, user, password=kwargs.pop(
            "password", f"{user}secret"), origin=kwargs.pop("origin", ORIGIN),
            ca=str(self.certs / "ca.pem"), **kwargs)

    def kamcli(self, *args: str) -> Any:
        from click.testing import CliRunner

        from kamcli.main import cli

        result = CliRunner().invoke(cli, ["-s", str(self.workdir / "run" / "kamrouter_rpc.sock"),
                                          "-o", "json", *args], prog_name="kamcli")
        assert result.exit_code == 0, (args, result.output, self.process.log_tail())
        return json.loads(result.stdout) if result.stdout.strip() else None

    def sipp(self, name: str, scenario: str, *args: str, remote: bool = True) -> Sipp:
        return Sipp(name, scenario, self.workdir, port=free_port(),
                    remote=f"{LOOPBACK}:{self.port}" if remote else None,
                    extra_args=args, trace_messages=True)


@pytest.fixture
def router(tmp_path: Path, certs: Path) -> Iterator[WebrtcRouter]:
    process = WebrtcRouter(tmp_path / "router", certs)
    process.process.start()
    try:
        process.kamcli("subscriber", "add", "alice@example.com", "alicesecret")
        process.kamcli("subscriber", "add", "bob@example.com", "bobsecret")
        yield process
    finally:
        process.process.stop()
        assert "Traceback" not in process.process.log_tail(), process.process.log_tail()


def register_udp_phone(router: WebrtcRouter, user: str) -> int:
    """sipp registers ``user`` from a UDP port (with digest); that port."""
    phone = router.sipp(f"reg-{user}", REGISTER_XML, "-s", user, "-au", user, "-ap",
                        f"{user}secret")
    phone.start()
    result = phone.wait()
    assert result.complete, result.report()
    return phone.port


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_a_browser_registers_and_calls_a_udp_phone(router: WebrtcRouter, secure: bool) -> None:
    bob_port = register_udp_phone(router, "bob")
    bob = Sipp("bob", UAS_XML, router.workdir, port=bob_port, trace_messages=True)
    bob.start()
    bob.wait_listening()
    with router.phone("alice", secure=secure) as alice:
        assert alice.register().status == 200
        contacts = router.kamcli("ul", "show", "alice@example.com")
        assert f"{alice.host};transport=ws" in json.dumps(contacts)
        assert (f"transport={'wss' if secure else 'ws'}") in json.dumps(contacts)  # received
        dialog = alice.call("sip:bob@example.com")
        assert alice.bye(dialog).status == 200
    result = bob.wait()
    assert result.complete, result.report()
    invite = result.received("INVITE")[0]
    routes = invite.headers("Record-Route")
    assert len(routes) == 2 and "@" in routes[1] and "transport=ws" in routes[1], routes


def test_a_udp_phone_calls_a_browser_over_its_own_connection(router: WebrtcRouter) -> None:
    with router.phone("alice", secure=True) as alice:
        assert alice.register().status == 200
        bob = router.sipp("bob", CALLER_XML, "-s", "bob", "-au", "bob", "-ap", "bobsecret",
                          "-key", "callee", "alice")
        bob.start()
        invite = alice.answer()
        assert invite.ruri == f"sip:alice@{alice.host};transport=ws"
        alice.expect("ACK")
        bye = alice.expect("BYE")  # routed by the flow token: the R-URI is .invalid
        alice.send(alice.reply(bye, 200, "OK"))
        result = bob.wait()
        assert result.complete, result.report()


def test_authentication_can_be_off(tmp_path: Path, certs: Path) -> None:
    router = WebrtcRouter(tmp_path / "router", certs, auth=False)
    router.process.start()
    try:
        with router.phone("carol", password=None) as carol:
            assert carol.register().status == 200
    finally:
        router.process.stop()


def test_a_call_to_a_browser_that_went_away_is_not_found(tmp_path: Path,
                                                         certs: Path) -> None:
    """Its binding lives on, but nothing can reach it without its connection: lookup skips
    it (404 at once, not a timeout)."""
    router = WebrtcRouter(tmp_path / "router", certs, auth=False)
    router.process.start()
    try:
        with router.phone("alice", password=None) as alice:
            assert alice.register().status == 200
        wait_until(lambda: router.kamcli("stats", "websocket:ws_current_connections")
                   == {"websocket:ws_current_connections": 0}, "the router saw the close",
                   detail=router.process.log_tail)
        with router.phone("bob", password=None) as bob:
            bob.send(bob.request("INVITE", "sip:alice@example.com", call_id="gone-1", cseq=1,
                                 from_tag="b1", to="sip:alice@example.com", body=SDP))
            assert bob.final().status == 404
        assert "alice" in json.dumps(router.kamcli("ul", "show", "alice@example.com"))
    finally:
        router.process.stop()


def test_kamcli_ws_dump_and_close(router: WebrtcRouter) -> None:
    with router.phone("alice", secure=True) as alice:
        assert alice.register().status == 200
        (row,) = router.kamcli("ws", "dump")
        assert row["origin"] == ORIGIN and row["state"] == "open"
        assert row["local"] == f"wss:{LOOPBACK}:{router.wss_port}"
        assert router.kamcli("ws", "close", str(row["id"])) == "ok"
        with pytest.raises(ConnectionClosed) as closed:
            alice.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    wait_until(lambda: router.kamcli("ws", "dump") == [], "the connection is gone")


def test_a_peer_that_answers_no_ping_is_closed(tmp_path: Path, certs: Path) -> None:
    """keepalive_interval: a silent peer is pinged; silent for as long again, it is gone."""
    router = WebrtcRouter(tmp_path / "router", certs, keepalive_interval=1)
    router.process.start()
    try:
        with socket.create_connection((LOOPBACK, router.ws_port), timeout=20) as peer:
            peer.sendall(ws_upgrade(f"{LOOPBACK}:{router.ws_port}"))
            received = b""
            while chunk := peer.recv(4096):  # the 101, a ping, then the close (EOF)
                received += chunk
        assert received.startswith(b"HTTP/1.1 101 ") and b"\x89" in received, received
        assert router.kamcli("stats", "tcp:con_timeout") == {"tcp:con_timeout": 1}
    finally:
        router.process.stop()


def test_a_wrong_password_is_refused(router: WebrtcRouter) -> None:
    with router.phone("alice", password="wrong") as alice:
        assert alice.register().status == 403


def test_an_origin_not_on_the_list_is_refused(router: WebrtcRouter) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(router.ws_url, subprotocols=["sip"], origin="https://evil.example",
                open_timeout=10)
    assert refused.value.response.status_code == 403


def test_the_sip_subprotocol_is_required(router: WebrtcRouter) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(router.ws_url, origin=ORIGIN, open_timeout=10)
    assert refused.value.response.status_code == 400


def test_a_message_over_the_size_limit_closes_with_1009(tmp_path: Path, certs: Path) -> None:
    router = WebrtcRouter(tmp_path / "router", certs, max_message_size=1024)
    router.process.start()
    try:
        with connect(router.ws_url, subprotocols=["sip"], open_timeout=10) as ws:
            ws.send("OPTIONS sip:x SIP/2.0\r\n" + "X: " + "a" * 2000 + "\r\n\r\n")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        router.process.stop()


EDGE_SCRIPT = """
from kamrouter.script import path, rr, tm

REGISTRAR = "sip:127.0.0.1:{registrar};transport=udp"


def request_route(msg):
    routed = rr.loose_route(msg)  # back through our Path / Record-Route: a flow token decides
    if msg.method == "REGISTER":
        path.add_path(msg)
    if msg.method in ("INVITE", "SUBSCRIBE") and msg.to_tag is None:
        rr.record_route(msg)
    if not routed:
        msg.dst_uri = REGISTRAR
    tm.relay(msg)
"""


def edge_proxy(workdir: Path, registrar_port: int) -> tuple[ProxyProcess, int]:
    """kamrouter as a WebSocket edge in front of the registrar on ``registrar_port``: the
    process (started) and its ws: port."""
    edge_port, edge_ws = free_port(), free_port()
    edge = kamrouter_proxy(workdir, edge_port,
                           script=EDGE_SCRIPT.format(registrar=registrar_port), sections={
                               "core": {"listen": [f"udp:{LOOPBACK}:{edge_port}",
                                                   f"tcp:{LOOPBACK}:{edge_port}",
                                                   f"ws:{LOOPBACK}:{edge_ws}"]}})
    return edge.start(), edge_ws


def call_the_browser(alice: WsPhone, caller: Sipp) -> None:
    """``caller`` (sipp uac.xml as -s alice) rings the browser, which answers; the BYE
    comes back over the browser's connection."""
    caller.start()
    invite = alice.answer()
    assert invite.ruri == f"sip:alice@{alice.host};transport=ws"
    alice.expect("ACK")
    bye = alice.expect("BYE")
    alice.send(alice.reply(bye, 200, "OK"))
    result = caller.wait()
    assert result.complete, result.report()


def test_an_edge_proxy_in_front_of_a_kamailio_registrar(tmp_path: Path) -> None:
    """Interop: Kamailio 5.6's registrar keeps our Path (with the flow token) and its
    lookup() routes the call through it to the edge, which finds the connection."""
    port = free_port()
    kamailio = kamailio_proxy(tmp_path / "kamailio", port,
                              cfg=Path(__file__).with_name("kamailio_registrar.cfg"))
    kamailio.start()
    try:
        edge, edge_ws = edge_proxy(tmp_path / "edge", port)
        try:
            with WsPhone(f"ws://{LOOPBACK}:{edge_ws}/", "alice", password=None) as alice:
                reply = alice.register()
                assert reply.status == 200, reply.to_bytes()
                call_the_browser(alice, Sipp("bob", UAC_XML, tmp_path, port=free_port(),
                                             remote=f"{LOOPBACK}:{port}",
                                             extra_args=("-s", "alice"),
                                             trace_messages=True))
        finally:
            edge.stop()
    finally:
        kamailio.stop()


def test_an_edge_proxy_reaches_the_browser_through_its_path(tmp_path: Path,
                                                             certs: Path) -> None:
    """Browser -ws-> edge (add_path: a flow token in Path) -udp-> registrar; a UDP phone's
    call to the browser: registrar -> the Path -> edge -> the browser's connection."""
    registrar = WebrtcRouter(tmp_path / "registrar", certs, auth=False)
    registrar.process.start()
    edge, edge_ws = edge_proxy(tmp_path / "edge", registrar.port)
    try:
        with WsPhone(f"ws://{LOOPBACK}:{edge_ws}/", "alice", password=None) as alice:
            assert alice.register().status == 200
            shown = json.dumps(registrar.kamcli("ul", "show", "alice@example.com"))
            assert f"127.0.0.1:{edge.port}" in shown and ";ob" in shown, shown  # the Path
            call_the_browser(alice, registrar.sipp("bob", UAC_XML, "-s", "alice"))
    finally:
        edge.stop()
        registrar.process.stop()
