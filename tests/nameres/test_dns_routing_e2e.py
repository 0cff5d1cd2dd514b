"""RFC 3263 next hops through a real router: a Request-URI naming a domain is sent to its SRV
targets in priority order, a dead first target fails over to the next within the same
transaction (before any failure route), and the blocklist then skips the dead one.
The name server is our own on 127.0.0.1; every target is on 127.0.0.1."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from support.dnsserver import DnsServer
from support.lab import SipLab
from support.ports import LOOPBACK, free_port
from support.proxy import kamrouter_proxy

SCRIPT = """
from kamrouter.default.routes import handled_before_routing
from kamrouter.script import rr, tm


def request_route(msg):
    if handled_before_routing(msg):
        return
    rr.record_route(msg)
    msg.ruri = "sip:service@gw.test"
    tm.relay(msg)
"""


class BlackHole:
    """A UDP port that takes INVITEs and never answers (a dead server), counting them."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, free_port()))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.invites: set[bytes] = set()  # branch ids (retransmissions count once)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except (TimeoutError, OSError):
                continue
            if data.startswith(b"INVITE "):
                via = data.split(b"branch=", 1)[1].split(b"\r\n", 1)[0]
                self.invites.add(via)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


def kamcli(proxy_workdir: Path, *args: str) -> object:
    binary = Path(sys.executable).parent / "kamcli"
    out = subprocess.run([str(binary), "-s", str(proxy_workdir / "run" / "kamrouter_rpc.sock"),
                          "-o", "json", *args],
                         capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def test_srv_failover_then_blocklist(tmp_path: Path, black_hole: BlackHole) -> None:
    lab = SipLab(tmp_path, "kamrouter")
    try:
        uas = lab.uas("uas.xml", calls=1)
        with DnsServer() as dns:
            dns.set("_sip._udp.gw.test", "SRV", [f"10 0 {black_hole.port} dead.gw.test.",
                                                 f"20 0 {uas.port} live.gw.test."])
            dns.set("dead.gw.test", "A", [LOOPBACK])
            dns.set("live.gw.test", "A", [LOOPBACK])
            workdir = tmp_path / "router"
            proxy = kamrouter_proxy(workdir, free_port(), script=SCRIPT,
                                    tm={"fr_timer": 1500},
                                    sections={"dns": {"servers": [dns.address]}})
            lab.proxy = proxy.start()
            lab.run(lab.uac("uac.xml", to=f"{LOOPBACK}:{uas.port}", via=proxy, calls=1), uas)
            assert len(black_hole.invites) == 1, "the dead target was tried first, once"
            blocked = kamcli(workdir, "blocklist", "list")
            assert [(e["ip"], e["port"], e["reason"]) for e in blocked] == [
                (LOOPBACK, black_hole.port, "timeout")]
            stats = kamcli(workdir, "rpc", "stats.get_statistics", "dns:")
            assert "dns:failovers = 1" in stats
            # The next call skips the blocked target: straight to the live one.
            second = lab.uas("uas.xml", calls=1)
            dns.set("_sip._udp.gw.test", "SRV", [f"10 0 {black_hole.port} dead.gw.test.",
                                                 f"20 0 {second.port} live.gw.test."])
            kamcli(workdir, "dns", "flush")
            lab.run(lab.uac("uac.xml", to=f"{LOOPBACK}:{second.port}", via=proxy, calls=1),
                    second)
            assert len(black_hole.invites) == 1
            targets = kamcli(workdir, "dns", "lookup", "sip", "gw.test")
            assert targets["targets"] == [f"udp:{LOOPBACK}:{black_hole.port}",
                                          f"udp:{LOOPBACK}:{second.port}"]
            kamcli(workdir, "blocklist", "flush")
            assert kamcli(workdir, "blocklist", "list") == []
    finally:
        lab.close()
