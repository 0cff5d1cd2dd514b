"""SIP over WebSocket (RFC 7118) through a real router: the upgrade (sip subprotocol, Origin
allow-list), a browser-like phone whose host is .invalid calling a UDP sipp phone and called
by one over its own connection (RFC 5626 flow tokens in Record-Route), secure WebSocket, and
the message size limit."""
from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support.lab import SipLab
from tests.support.ports import LOOPBACK, free_port
from tests.support.proxy import ProxyProcess, kamrouter_proxy
from tests.support.sipp import Sipp
from tests.support.wsphone import WsPhone

# A stand-in location service until the registrar routes these: REGISTER over WebSocket
# remembers the connection it came on; calls to that user go over it.
SCRIPT = """
from kamrouter.default.routes import answered_here, handled_before_routing
from kamrouter.script import rr, sl, tm

LOCATION = {}


def request_route(msg):
    if handled_before_routing(msg):
        return
    if msg.method == "REGISTER":
        LOCATION[msg.to_user] = (msg.source, msg.get_header("Contact"))
        sl.send_reply(msg, 200, "OK", headers=(("Contact", msg.get_header("Contact")),))
        return
    found = LOCATION.get(msg.ruri_user)
    if found is not None:
        source, contact = found
        msg.ruri = contact.strip("<>").split(">", 1)[0]
        msg.dst_uri = f"sip:{source.host}:{source.port};transport={source.proto}"
    elif answered_here(msg):
        return
    rr.record_route(msg)
    tm.relay(msg)
"""


def ws_router(tmp_path: Path, certs: Path | None = None, **websocket: object) -> ProxyProcess:
    port, ws_port = free_port(), free_port()
    proto = "wss" if certs else "ws"
    sections: dict = {"core": {"listen": [f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}",
                                          f"{proto}:{LOOPBACK}:{ws_port}"]}}
    if websocket:
        sections["websocket"] = websocket
    proxy = kamrouter_proxy(tmp_path / "router", port, script=SCRIPT, sections=sections)
    if certs:
        with open(proxy.argv[-1], "a") as file:
            file.write(f'\n[[tls.server]]\ncertificate = "{certs / "server.pem"}"\n'
                       f'private_key = "{certs / "server.key"}"\n')
    proxy.ws_url = f"{proto}://{LOOPBACK}:{ws_port}/"  # type: ignore[attr-defined]
    return proxy.start()


@pytest.fixture
def router(tmp_path: Path):
    proxy = ws_router(tmp_path, allowed_origins=["https://phone.example"])
    yield proxy
    proxy.stop()


def test_a_websocket_phone_calls_a_udp_phone(tmp_path: Path, router: ProxyProcess) -> None:
    lab = SipLab(tmp_path, "kamrouter")
    try:
        uas = lab.uas("uas.xml", calls=1)
        uas.start()
        uas.wait_listening()
        with WsPhone(router.ws_url, origin="https://phone.example") as phone:
            dialog = phone.call(f"sip:service@{uas.address}")
            assert phone.bye(dialog).status == 200
        result = uas.wait()
        assert result.complete, result.report()
        invite = result.received("INVITE")[0]
        assert any("transport=ws" in r for r in invite.headers("Record-Route"))
    finally:
        lab.close()


def test_a_udp_phone_calls_a_websocket_phone_over_its_connection(
        tmp_path: Path, router: ProxyProcess) -> None:
    lab = SipLab(tmp_path, "kamrouter")
    try:
        with WsPhone(router.ws_url, origin="https://phone.example") as phone:
            assert phone.register(f"sip:{LOOPBACK}").status == 200
            caller = lab._add(Sipp("uac", "uac.xml", tmp_path, port=free_port(),
                                   remote=router.address, outbound_proxy=router.address,
                                   calls=1, extra_args=("-s", "alice")))
            caller.start()
            invite = phone.answer()
            assert invite.ruri.endswith(f"@{phone.host};transport=ws")
            phone.expect("ACK")
            bye = phone.expect("BYE")  # routed by the flow token: the R-URI is .invalid
            phone.send(phone.reply(bye, 200, "OK"))
            result = caller.wait()
            assert result.complete, result.report()
    finally:
        lab.close()


def test_an_origin_not_on_the_list_is_refused(router: ProxyProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(router.ws_url, subprotocols=["sip"], origin="https://evil.example",
                open_timeout=10)
    assert refused.value.response.status_code == 403


def test_the_sip_subprotocol_is_required(router: ProxyProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(router.ws_url, open_timeout=10)
    assert refused.value.response.status_code == 400


def test_a_message_over_the_size_limit_closes_with_1009(tmp_path: Path) -> None:
    proxy = ws_router(tmp_path, max_message_size=1024)
    try:
        with connect(proxy.ws_url, subprotocols=["sip"], open_timeout=10) as ws:
            ws.send("OPTIONS sip:x SIP/2.0\r\n" + "X: " + "a" * 2000 + "\r\n\r\n")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        proxy.stop()


def test_secure_websocket(tmp_path: Path, certs: Path) -> None:
    proxy = ws_router(tmp_path, certs)
    try:
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        with connect(proxy.ws_url, subprotocols=["sip"], ssl=context,
                     server_hostname="localhost", open_timeout=10) as ws:
            ws.send(f"OPTIONS sip:{proxy.address} SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK1"
                    "\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\n"
                    "Call-ID: wss-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
            assert ws.recv(timeout=10).startswith("SIP/2.0 200")
    finally:
        proxy.stop()
