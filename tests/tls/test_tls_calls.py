"""Whole calls crossing between TLS and UDP through a real router, with sipp on both ends
(over stunnel, since Debian's sipp has no TLS): a TLS caller to a UDP callee, a UDP caller to
a TLS callee whose certificate the router verifies, and the same callee refused when its
certificate does not match."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.lab import SipLab
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.sipp import Sipp
from support.stunnel import Stunnel

SCRIPT = """
import os

from kamrouter.default.routes import handled_before_routing
from kamrouter.script import rr, tm


def request_route(msg):
    if handled_before_routing(msg):
        return
    rr.record_route(msg)
    tls_callee = os.environ.get("TLS_CALLEE")
    if tls_callee:
        msg.ruri = f"sip:{msg.ruri_user or 'service'}@{tls_callee};transport=tls"
    tm.relay(msg)
"""


def tls_router(tmp_path: Path, certs: Path, *, client_ca: Path, env: dict[str, str]
               ) -> ProxyProcess:
    port, tls_port = free_port(), free_port()
    proxy = kamrouter_proxy(tmp_path / "router", port, script=SCRIPT, env=env, sections={
        "core": {"listen": [f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}",
                            f"tls:{LOOPBACK}:{tls_port}"]},
        "tm": {"fr_timer": 3000}})
    with open(proxy.argv[-1], "a") as file:
        file.write(f'\n[[tls.server]]\ncertificate = "{certs / "server.pem"}"\n'
                   f'private_key = "{certs / "server.key"}"\n'
                   f'\n[tls.client]\nverify_certificate = true\nca_list = "{client_ca}"\n'
                   'server_name = "localhost"\n')
    proxy.tls_port = tls_port  # type: ignore[attr-defined]
    return proxy.start()


def test_a_tls_caller_reaches_a_udp_callee(tmp_path: Path, certs: Path) -> None:
    lab = SipLab(tmp_path, "kamrouter")
    proxy = tls_router(tmp_path, certs, client_ca=certs / "ca.pem", env={})
    lab.proxy = proxy
    tunnel = Stunnel(tmp_path / "stunnel", client=True, connect=proxy.tls_port,
                     ca=certs / "ca.pem", check_host="localhost").wait_listening()
    try:
        uas = lab.uas("uas.xml", calls=2)
        uac = lab._add(Sipp("uac", "uac.xml", tmp_path, port=free_port(), remote=uas.address,
                            outbound_proxy=tunnel.address, transport="tcp", calls=2,
                            trace_messages=True))
        outcome = lab.run(uac, uas)
        invite = outcome.uas[0].received("INVITE")[0]
        record_routes = invite.headers("Record-Route")
        assert any("transport=tls" in rr for rr in record_routes), record_routes
        assert len(record_routes) == 2, "Record-Route doubled between TLS and UDP"
    finally:
        tunnel.stop()
        lab.close()


@pytest.mark.parametrize("trusted", [True, False], ids=["verified", "wrong-certificate"])
def test_a_udp_caller_reaches_a_tls_callee(tmp_path: Path, certs: Path, other_ca: Path,
                                           trusted: bool) -> None:
    lab = SipLab(tmp_path, "kamrouter")
    callee = lab._add(Sipp("uas", "uas.xml", tmp_path, port=free_port(), transport="tcp",
                           calls=1, trace_messages=True))
    tunnel = Stunnel(tmp_path / "stunnel", client=False, connect=callee.port,
                     cert=certs / "server.pem", key=certs / "server.key").wait_listening()
    proxy = tls_router(tmp_path, certs, client_ca=certs / "ca.pem" if trusted else other_ca / "ca.pem",
                       env={"TLS_CALLEE": tunnel.address})
    lab.proxy = proxy
    try:
        uac = lab.uac("uac.xml", to=callee.address, via=proxy, calls=1)
        if trusted:
            lab.run(uac, callee)
        else:
            callee.start()
            callee.wait_listening()
            result = uac.start().wait()
            assert result.failed == 1 and result.successful == 0, result.report()
            assert "tls handshake with tls:" in proxy.log_tail()
    finally:
        tunnel.stop()
        lab.close()
