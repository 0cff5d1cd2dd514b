"""The relay policy of the embedded default, against a real kamrouter process: strangers
(sources other than 127.0.0.1; here 127.0.0.2) reach only the router itself and the allow
list, get 403 otherwise, and are rate-limited by pike; operators see and edit it all with
kamcli. Traffic stays on 127.0.0.x."""
from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kamrouter.core.router import Router
from kamrouter.core.settings import Settings
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.sipp import Sipp

STRANGER = "127.0.0.2"
REFUSED = "SIP/2.0 403 Relaying Forbidden: destination not allowed"


class RawClient:
    """A UDP socket bound to ``ip`` sending raw requests to the router."""

    def __init__(self, ip: str, router_port: int) -> None:
        self.ip = ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.port = self.sock.getsockname()[1]
        self.router = (LOOPBACK, router_port)
        self.sent = 0

    def send(self, method: str, ruri: str, *, to_tag: str = "", route: str = "",
             body: str = "") -> None:
        self.sent += 1
        n = self.sent
        headers = (f"{method} {ruri} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bKpolicy{n}\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:stranger@{self.ip}>;tag=s{n}\r\n"
                   f"To: <{ruri}>{';tag=' + to_tag if to_tag else ''}\r\n"
                   f"Call-ID: policy-{n}@{self.ip}\r\nCSeq: 1 {method}\r\n"
                   f"Contact: <sip:stranger@{self.ip}:{self.port}>\r\n"
                   + (f"Route: {route}\r\n" if route else "")
                   + f"Content-Length: {len(body)}\r\n\r\n{body}")
        self.sock.sendto(headers.encode(), self.router)

    def final_reply(self, timeout: float = 10) -> str:
        """The first final status line that comes back (AssertionError after timeout)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                line = self.sock.recv(65535).split(b"\r\n", 1)[0].decode()
            except TimeoutError:
                break
            if not line.startswith("SIP/2.0 1"):
                return line
        raise AssertionError(f"no final reply from the router within {timeout:g} s")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def start_router(tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    started: list[ProxyProcess] = []

    def start(sections: dict[str, dict[str, Any]] | None = None, *, name: str = "router",
              port: int | None = None) -> ProxyProcess:
        proxy = kamrouter_proxy(tmp_path / name, port or free_port(), sections=sections)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def tcp_service() -> Iterator[socket.socket]:
    """A local non-SIP TCP service (think Redis) nobody outside should reach via us."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(8)
    yield listener
    listener.close()


@pytest.fixture
def clients() -> Iterator[Callable[[str, int], RawClient]]:
    made: list[RawClient] = []

    def make(ip: str, port: int) -> RawClient:
        made.append(RawClient(ip, port))
        return made[-1]

    yield make
    for client in made:
        client.close()


def kamcli(proxy: ProxyProcess, *args: str, output: str = "json") -> Any:
    from click.testing import CliRunner

    from kamcli.main import cli

    socket_path = str(proxy.workdir / "run" / "kamrouter_rpc.sock")
    result = CliRunner().invoke(cli, ["-s", socket_path, "-o", output, *args],
                                prog_name="kamcli")
    return result


def kamcli_json(proxy: ProxyProcess, *args: str) -> Any:
    result = kamcli(proxy, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def nothing_connected(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return True
    finally:
        listener.setblocking(True)
    return False


def sipp_peer(tmp_path: Path, name: str, scenario: str, **kwargs: Any) -> Sipp:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester)")
    return Sipp(name, scenario, tmp_path, port=free_port(), trace_messages=True, **kwargs)


# -- the embedded default ---------------------------------------------------------------------

def test_the_embedded_default_loads_the_policy_modules():
    settings = Settings()
    settings.core.listen = ["udp:127.0.0.1:0"]
    router = Router(settings)
    assert {"permissions", "pike"} <= set(router.modules)
    assert router.modules["permissions"].config.trusted_groups == [1]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_strangers_invite_to_a_local_tcp_service_is_refused(
        start_router, tcp_service, clients, tmp_path: Path, transport: str) -> None:
    proxy = start_router()
    service = f"{LOOPBACK}:{tcp_service.getsockname()[1]}"
    uac = sipp_peer(tmp_path, "stranger", "uac_refused.xml", remote=service,
                    outbound_proxy=proxy.address, local_ip=STRANGER, transport=transport)
    result = uac.start().wait()
    assert result.complete, result.report()
    assert [m.status for m in result.received(403)] == [403]
    assert nothing_connected(tcp_service)
    assert kamcli_json(proxy, "stats", "permissions:relay_denied") == {
        "permissions:relay_denied": 2}  # the INVITE, and its ACK (dropped)
    # The same request from the trusted source is relayed as before this policy: the
    # check above would have seen it.
    insider = clients(LOOPBACK, proxy.port)
    insider.send("INVITE", f"sip:redis@{service};transport=tcp", body="FLUSHALL\r\n")
    tcp_service.settimeout(10)
    connection, _ = tcp_service.accept()
    with connection:
        connection.settimeout(10)
        assert connection.recv(65535).startswith(b"INVITE sip:redis@")


def test_other_ways_of_asking_for_the_same_destination_are_refused(
        start_router, tcp_service, clients) -> None:
    proxy = start_router()
    service = f"{LOOPBACK}:{tcp_service.getsockname()[1]}"
    us = proxy.address
    stranger = clients(STRANGER, proxy.port)
    attempts = [
        dict(ruri=f"sip:x@{us}", route=f"<sip:{service};transport=tcp;lr>"),  # pre-loaded
        dict(ruri=f"sip:x@{service};transport=tcp", route=f"<sip:{us};lr>"),   # via us first
        dict(ruri=f"sip:x@{service};transport=tcp", to_tag="forged"),        # "in-dialog"
        dict(ruri=f"sip:x@{service};transport=tcp;maddr=127.0.0.1"),
        dict(ruri="sip:x@192.0.2.1:5060"),                                    # another host
        dict(ruri=f"sip:x@{service};transport=tcp", to_tag="t",                  # forged token
             route=f"<sip:{us};lr;tc=00112233445566778899>"),
    ]
    for attempt in attempts:
        stranger.send("INVITE", **attempt)
        assert stranger.final_reply() == REFUSED, attempt
    stranger.send("OPTIONS", f"sip:{us}")  # the router itself may be asked
    assert stranger.final_reply() == "SIP/2.0 200 OK"
    assert nothing_connected(tcp_service)


def test_an_allow_listed_destination_works_from_a_stranger(start_router, tmp_path: Path
                                                           ) -> None:
    uas = sipp_peer(tmp_path, "callee", "uas.xml")
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "address.list").write_text(
        f"# the callee: anyone may call it\n2 {LOOPBACK} 32 {uas.port} callee\n")
    proxy = start_router({"permissions": {"address_file": "address.list"}})
    uac = sipp_peer(tmp_path, "stranger", "uac.xml", remote=uas.address,
                    outbound_proxy=proxy.address, local_ip=STRANGER)
    uas.start().wait_listening()
    caller = uac.start().wait()
    callee = uas.wait()
    assert caller.complete and callee.complete, caller.report() + callee.report()
    # Its neighbour on another port is not in the allow list.
    refused = sipp_peer(tmp_path, "stranger2", "uac_refused.xml",
                        remote=f"{LOOPBACK}:{free_port()}", outbound_proxy=proxy.address,
                        local_ip=STRANGER).start().wait()
    assert refused.complete, refused.report()


def test_a_callee_that_is_not_trusted_can_hang_up_on_a_trusted_caller(start_router,
                                                                      tmp_path: Path) -> None:
    """The callee's BYE goes to the caller's Contact, which only the Record-Route token of
    the trusted caller's INVITE allows for an untrusted source."""
    proxy = start_router()
    callee = sipp_peer(tmp_path, "callee", "uas_sends_bye.xml", local_ip=STRANGER)
    caller = sipp_peer(tmp_path, "caller", "uac_bye_received.xml", remote=callee.address,
                       outbound_proxy=proxy.address)
    callee.start().wait_listening()
    caller_result = caller.start().wait()
    callee_result = callee.wait()
    assert caller_result.complete and callee_result.complete, (
        caller_result.report() + callee_result.report() + proxy.log_tail())
    [invite] = callee_result.received("INVITE")
    assert ";tc=" in invite.headers("Record-Route")[0]


# -- pike -------------------------------------------------------------------------------------

def test_pike_bans_a_flooding_source_and_kamcli_shows_and_unbans_it(start_router, clients
                                                                    ) -> None:
    proxy = start_router({"pike": {"reqs_density_per_unit": 5, "sampling_time_unit": 3600}})
    keepalive = f"sip:{proxy.address}"
    insider = clients(LOOPBACK, proxy.port)
    for _ in range(8):  # trusted sources are not rate-limited
        insider.send("OPTIONS", keepalive)
        assert insider.final_reply() == "SIP/2.0 200 OK"
    stranger = clients(STRANGER, proxy.port)
    for _ in range(5):
        stranger.send("OPTIONS", keepalive)
        assert stranger.final_reply() == "SIP/2.0 200 OK"
    stranger.send("OPTIONS", keepalive)  # the sixth in the window: dropped, banned
    deadline = time.monotonic() + 10
    while not (rows := kamcli_json(proxy, "pike", "list")):
        assert time.monotonic() < deadline, "pike never listed the flooding source"
        time.sleep(0.05)
    [row] = rows
    assert (row["ip_addr"], row["status"], row["leaf_hits_curr"], row["reason"]) == (
        STRANGER, "HOT", 6, "flood")
    assert 0 < row["ban_expires"] <= 300
    table = kamcli(proxy, "pike", "list", output="table")
    assert table.exit_code == 0 and STRANGER in table.stdout and "HOT" in table.stdout
    assert kamcli_json(proxy, "stats", "pike:")["pike:blocked_requests"] == 1
    top = kamcli_json(proxy, "rpc", "pike.top", "ALL")  # Kamailio's method and shape
    assert top["max_hits"] == 5 and top["number_of_rows"] == 1
    unban = kamcli(proxy, "pike", "unban", STRANGER)
    assert unban.exit_code == 0 and f"{STRANGER} unbanned" in unban.stderr
    stranger.send("OPTIONS", keepalive)
    assert stranger.final_reply() == "SIP/2.0 200 OK"
    again = kamcli(proxy, "pike", "unban", STRANGER)
    assert again.exit_code == 1 and "Not banned" in again.stderr
    assert kamcli(proxy, "pike", "ban", "not-an-ip").exit_code == 1


# -- address groups over RPC and kamcli -------------------------------------------------------

def test_address_groups_are_edited_live_and_survive_a_restart(start_router, clients,
                                                              tmp_path: Path) -> None:
    workdir = tmp_path / "router"
    workdir.mkdir()
    (workdir / "address.list").write_text("# carriers\n2 192.0.2.0 24 0 carriers\n")
    sections = {"permissions": {"address_file": "address.list"}}
    port = free_port()
    proxy = start_router(sections, port=port)
    assert kamcli_json(proxy, "rpc", "permissions.subnetDump") == [
        {"id": 0, "group": 2, "item": {"ip": "192.0.2.0", "mask": 24, "port": 0,
                                       "proto": "any", "tag": "carriers"}}]
    assert kamcli_json(proxy, "rpc", "permissions.addressDump") == [
        {"table": 0, "group": 1, "item": {"ip": "127.0.0.1", "port": 0, "proto": "any",
                                          "tag": "NULL"}}]
    sip_port = free_port()
    added = kamcli(proxy, "address", "add", "2", LOOPBACK, "--port", str(sip_port),
                   "--tag", "lab")
    assert added.exit_code == 0 and "stored in" in added.stderr
    assert kamcli(proxy, "address", "add", "2", LOOPBACK, "--port",
                  str(sip_port)).exit_code == 1  # already there
    assert kamcli_json(proxy, "address", "test", "2", LOOPBACK, str(sip_port))["allowed"]
    assert not kamcli_json(proxy, "address", "test", "2", LOOPBACK, "9")["allowed"]

    proxy.stop()
    proxy = start_router(sections, name="router", port=port)  # same config, same file
    rows = kamcli_json(proxy, "address", "list", "2")
    assert [(r["address"], r["mask"], r["port"], r["tag"], r["kind"]) for r in rows] == [
        (LOOPBACK, 32, sip_port, "lab", "address"), ("192.0.2.0", 24, 0, "carriers", "subnet")]
    table = kamcli(proxy, "address", "list", output="table")
    assert table.exit_code == 0 and "carriers" in table.stdout and "lab" in table.stdout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as allowed:  # the allowed peer
        allowed.bind((LOOPBACK, sip_port))
        allowed.settimeout(10)
        clients(STRANGER, proxy.port).send("OPTIONS", f"sip:peer@{LOOPBACK}:{sip_port}")
        assert allowed.recv(65535).startswith(b"OPTIONS sip:peer@")  # relayed to it

    removed = kamcli(proxy, "address", "rm", "2", LOOPBACK, "--port", str(sip_port))
    assert removed.exit_code == 0
    assert (workdir / "address.list").read_text() == "# carriers\n2 192.0.2.0 24 0 carriers\n"
    assert kamcli(proxy, "permissions", "rm", "2", LOOPBACK).exit_code == 1  # alias, 404
    assert kamcli(proxy, "address", "reload").exit_code == 0
    assert len(kamcli_json(proxy, "address", "list")) == 2
