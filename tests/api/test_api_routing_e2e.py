"""API routing end to end: a real kamrouter, the reference controllers, sipp peers on 127.0.0.1.

Every call passes only when each sipp involved reports it successful (wrong or missing
messages fail it there); the tests then check what the peers received and the router's
``api:`` statistics.
"""
from __future__ import annotations

import json
import socket
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.lab import SipLab
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess
from support.sipp import Sipp, SippResult
from support.siptrace import TracedMessage
from support.wait import TIMEOUT, wait_until

from .harness import (
    CONTROLLERS,
    REPO,
    SCENARIOS,
    evapi_controller,
    http_controller,
    kamrouter_with,
    rpc,
    stats,
)

EXAMPLES = REPO / "etc" / "examples"
UAC_503 = str(SCENARIOS / "uac_503.xml")


def invite(result: SippResult) -> TracedMessage:
    """The INVITE a UAS received (retransmissions are copies of it)."""
    invites = result.received("INVITE")
    assert invites, f"sipp {result.name} received no INVITE"
    return invites[0]


def route_to(peer: Sipp | str, **fields: Any) -> dict[str, Any]:
    address = peer if isinstance(peer, str) else peer.address
    return {"uri": f"sip:service@{address}", **fields}


def api_mode(**api: Any) -> dict[str, dict[str, Any]]:
    return {"routing": {"mode": "api"}, "api": api}


@pytest.fixture
def silent_peer() -> Iterator[socket.socket]:
    """A UDP socket that takes INVITEs and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(TIMEOUT)  # a test reading what never came fails instead of hanging
    yield sock
    sock.close()


def address_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"{host}:{port}"


# -- the walkthrough of examples/controllers/README.md -----------------------------------------

def test_shipped_config_and_table_route_a_call_as_the_readme_shows(
        lab: SipLab, controllers: list[Any], tmp_path: Path) -> None:
    """etc/api-routing.toml and examples/controllers/table.json as shipped, on free ports."""
    carrier = lab.uas("uas.xml")
    table = json.loads((CONTROLLERS / "table.json").read_text()
                       .replace("127.0.0.1:5080", carrier.address)
                       .replace("127.0.0.1:5090", f"{LOOPBACK}:{free_port()}"))
    controller, url = http_controller(tmp_path / "controller", table)
    controllers.append(controller)
    config = tomllib.loads((REPO / "etc" / "api-routing.toml").read_text())
    proxy = kamrouter_with(lab, {"routing": config["routing"],
                                 "api": {**config["api"], "url": url}})
    caller = Sipp("caller", "uac.xml", lab.workdir, port=free_port(), remote=proxy.address,
                  extra_args=("-s", "+4930123"))
    outcome = lab.run(caller, carrier)

    received = invite(outcome.uas[0])
    assert received.first_line.startswith(f"INVITE sip:+4930@{carrier.address} ")
    assert received.headers("X-Carrier") == ["one"]
    assert rpc(proxy, "api.status")["answers"] == 1


# -- route documents ------------------------------------------------------------------------

def test_serial_document_fails_over_and_each_route_gets_its_headers(
        lab: SipLab, controllers: list[Any], tmp_path: Path) -> None:
    busy, answering = lab.uas("uas_busy.xml"), lab.uas("uas.xml")
    # The second route names a Request-URI nobody listens on and reaches its callee by its
    # path (a Route header on top).
    decoy = f"sip:service@{LOOPBACK}:{free_port()}"
    controller, url = http_controller(tmp_path / "controller", {"": {
        "routing": "serial",
        "routes": [route_to(busy, headers={"extra": "X-Route: first\r\n"}),
                   {"uri": decoy, "path": f"<sip:{answering.address};lr>",
                    "headers": {"extra": "X-Route: second\r\nX-Carrier: b\r\n",
                                "from": {"display": "Front Desk"}}}]}})
    controllers.append(controller)
    proxy = kamrouter_with(lab, api_mode(transport="http", url=url))
    outcome = lab.run(lab.uac("uac.xml", to=proxy.address), busy, answering)

    first, second = invite(outcome.uas[0]), invite(outcome.uas[1])
    assert first.headers("X-Route") == ["first"] and not first.headers("X-Carrier")
    assert second.headers("X-Route") == ["second"] and second.headers("X-Carrier") == ["b"]
    assert first.first_line.startswith(f"INVITE sip:service@{busy.address} ")
    assert not first.headers("Route")
    assert second.first_line.startswith(f"INVITE {decoy} ")
    assert second.headers("Route") == [f"<sip:{answering.address};lr>"]
    assert second.headers("From")[0].startswith("Front Desk <sip:caller@")
    assert ";tag=" in second.headers("From")[0], "the From tag survives the rewrite"
    assert stats(proxy, "api")["answers"] == 1


def test_parallel_document_rings_both_and_cancels_the_loser(
        lab: SipLab, controllers: list[Any], tmp_path: Path) -> None:
    answering, ringing = lab.uas("uas.xml"), lab.uas("uas_ring_until_cancel.xml")
    # The ringing route names a Request-URI nobody listens on and reaches its callee by
    # its path (a Route header on top).
    decoy = f"sip:service@{LOOPBACK}:{free_port()}"
    controller, url = http_controller(tmp_path / "controller", {"": {
        "routing": "parallel",
        "routes": [route_to(answering, headers={"extra": "X-Route: one\r\n"}),
                   {"uri": decoy, "path": f"<sip:{ringing.address};lr>",
                    "headers": {"extra": "X-Route: two\r\n"}}]}})
    controllers.append(controller)
    proxy = kamrouter_with(lab, api_mode(transport="http", url=url))
    outcome = lab.run(lab.uac("uac.xml", to=proxy.address), answering, ringing)

    assert outcome.uas[1].received("CANCEL"), "the ringing branch was cancelled"
    assert answering.address in outcome.uac.received(200, "INVITE")[0].headers("Contact")[0]
    assert invite(outcome.uas[0]).headers("X-Route") == ["one"]
    ringing_invite = invite(outcome.uas[1])
    assert ringing_invite.headers("X-Route") == ["two"]
    assert ringing_invite.first_line.startswith(f"INVITE {decoy} ")
    assert ringing_invite.headers("Route") == [f"<sip:{ringing.address};lr>"]


def test_per_route_fr_timer_fails_over_before_the_global_timer(
        lab: SipLab, controllers: list[Any], tmp_path: Path, silent_peer: socket.socket) -> None:
    answering = lab.uas("uas.xml")
    controller, url = http_controller(tmp_path / "controller", {"": {
        "routing": "serial",
        "routes": [route_to(address_of(silent_peer), fr_timer=500), route_to(answering)]}})
    controllers.append(controller)
    # The global timer (60 s) is far beyond sipp's 20 s call timeout: only the route's own
    # 500 ms fr_timer lets this call reach the second route in time.
    proxy = kamrouter_with(lab, {**api_mode(transport="http", url=url),
                                 "tm": {"fr_timer": 60000}})
    lab.run(lab.uac("uac.xml", to=proxy.address), answering)

    assert silent_peer.recv(65535).startswith(b"INVITE "), "the first route was tried"


# -- controllers over evapi and SIP ----------------------------------------------------------

@pytest.mark.parametrize("routing", ["api mode", "script"])
def test_evapi_async_relay_200_calls_at_50_cps(
        lab: SipLab, controllers: list[Any], tmp_path: Path, routing: str) -> None:
    uas = lab.uas("uas.xml", calls=200)
    evapi_port = free_port()
    mode = (api_mode(transport="evapi") if routing == "api mode" else
            {"core": {"load_modules": ["rtjson"]},
             "routing": {"script": str(EXAMPLES / "evapi_routing.py")}})
    proxy = kamrouter_with(lab, {**mode, "evapi": {"bind_addr": f"{LOOPBACK}:{evapi_port}"}})
    controllers.append(evapi_controller(tmp_path / "controller", {"": {
        "routing": "serial", "routes": [route_to(uas)]}}, evapi_port))
    wait_for_evapi_client(proxy)
    outcome = lab.run(lab.uac("uac.xml", to=proxy.address, calls=200, rate=50), uas)

    assert (outcome.uac.successful, outcome.uac.failed) == (200, 0)
    counters = stats(proxy, "evapi")
    assert (counters["sent"], counters["received"], counters["timeouts"]) == (200, 200, 0)


def wait_for_evapi_client(proxy: ProxyProcess) -> None:
    wait_until(lambda: rpc(proxy, "evapi.list"), "the evapi controller connected",
               detail=proxy.log_tail)


def test_sip_redirect_contacts_become_serial_routes_by_q(lab: SipLab, tmp_path: Path) -> None:
    busy, answering = lab.uas("uas_busy.xml"), lab.uas("uas.xml")
    contacts = (f"<sip:service@{answering.address}>;q=0.5, "
                f"<sip:service@{busy.address}>;q=0.9")
    scenario = tmp_path / "redirect.xml"
    scenario.write_text((SCENARIOS / "uas_redirect.xml").read_text()
                        .replace("CONTACTS", contacts))
    redirect = lab.uas(str(scenario))
    proxy = kamrouter_with(lab, api_mode(transport="sip", url=f"sip:{redirect.address}"))
    lab.run(lab.uac("uac.xml", to=proxy.address), redirect, busy, answering)

    assert stats(proxy, "api")["answers"] == 1


# -- when the controller cannot answer --------------------------------------------------------

def test_controller_timeout_falls_back_to_a_dispatcher_set(lab: SipLab, tmp_path: Path) -> None:
    fallback = lab.uas("uas.xml")
    list_file = tmp_path / "dispatcher.list"
    list_file.write_text(f"1 sip:{fallback.address}\n")
    with socket.create_server((LOOPBACK, 0)) as mute:  # accepts connections, never answers
        proxy = kamrouter_with(lab, {
            **api_mode(transport="http", url=f"http://{address_of(mute)}/", timeout=0.5,
                       on_error="dispatcher 1 4"),
            "dispatcher": {"list_file": str(list_file), "ping_interval": 0}})
        lab.run(lab.uac("uac.xml", to=proxy.address), fallback)

    counters = stats(proxy, "api")
    assert (counters["timeouts"], counters["fallbacks"], counters["answers"]) == (1, 1, 0)
    assert rpc(proxy, "api.status")["consecutive_failures"] == 1


def test_controller_not_running_falls_back_at_once(lab: SipLab) -> None:
    calls = 10
    nobody = free_port()
    # A 30 s API timeout against sipp's 10 s: a call that waited for it would fail.
    proxy = kamrouter_with(lab, api_mode(transport="http", url=f"http://{LOOPBACK}:{nobody}/",
                                         timeout=30, on_error="reply 503"))
    lab.run(lab.uac(UAC_503, to=proxy.address, calls=calls, rate=20, timeout_s=10))

    counters = stats(proxy, "api")
    assert counters["timeouts"] == 0 and counters["fallbacks"] == calls
    # the first refused connection opened the circuit: later calls did not even try
    assert counters["errors"] >= 1 and counters["errors"] + counters["short_circuits"] == calls
    status = rpc(proxy, "api.status")
    assert status["state"] == "open" and "unavailable" in status["last_error"]


def test_malformed_document_is_logged_by_field_and_falls_back(
        lab: SipLab, controllers: list[Any], tmp_path: Path) -> None:
    controller, url = http_controller(tmp_path / "controller", {"": {
        "routing": "serial", "routes": [{"uri": f"sip:service@{LOOPBACK}", "fr_timer": "2s"}]}})
    controllers.append(controller)
    proxy = kamrouter_with(lab, api_mode(transport="http", url=url, on_error="reply 503"))
    lab.run(lab.uac(UAC_503, to=proxy.address, calls=2))

    assert "routes[0].fr_timer: expected integer milliseconds, got string '2s'" in (
        proxy.log_tail())
    counters = stats(proxy, "api")
    assert (counters["errors"], counters["fallbacks"]) == (2, 2)
    assert rpc(proxy, "api.status")["state"] == "closed", "a live controller is not 'down'"


# -- the example scripts -------------------------------------------------------------------------

def test_evapi_routing_example_parks_resumes_and_fails_over(
        lab: SipLab, controllers: list[Any], tmp_path: Path) -> None:
    busy, answering = lab.uas("uas_busy.xml"), lab.uas("uas.xml")
    evapi_port = free_port()
    proxy = kamrouter_with(lab, {
        "core": {"load_modules": ["rtjson"]},
        "routing": {"script": str(EXAMPLES / "evapi_routing.py")},
        "evapi": {"bind_addr": f"{LOOPBACK}:{evapi_port}"}})
    controllers.append(evapi_controller(tmp_path / "controller", {"": {
        "routing": "serial", "routes": [route_to(busy, headers={"extra": "X-Leg: 1\r\n"}),
                                        route_to(answering, headers={"extra": "X-Leg: 2\r\n"})]}},
        evapi_port))
    wait_for_evapi_client(proxy)
    outcome = lab.run(lab.uac("uac.xml", to=proxy.address), busy, answering)

    assert invite(outcome.uas[0]).headers("X-Leg") == ["1"]
    assert invite(outcome.uas[1]).headers("X-Leg") == ["2"]
    assert stats(proxy, "evapi")["sent"] == 1


class PipeLookup(ThreadingHTTPServer):
    """The HTTP service of etc/examples/http_routing.py: answers ``uri|uri`` as text."""

    daemon_threads = True

    def __init__(self, answer: str) -> None:
        self.answer = answer.encode()
        self.paths: list[str] = []
        super().__init__((LOOPBACK, 0), PipeLookupHandler)


class PipeLookupHandler(BaseHTTPRequestHandler):
    server: PipeLookup

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.answer)))
        self.end_headers()
        self.wfile.write(self.server.answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("forking", ["serial", "parallel"])
def test_http_routing_example_tries_the_answered_uris(lab: SipLab, forking: str) -> None:
    if forking == "serial":
        first, second = lab.uas("uas_busy.xml"), lab.uas("uas.xml")
    else:
        first, second = lab.uas("uas.xml"), lab.uas("uas_ring_until_cancel.xml")
    lookup = PipeLookup(f"sip:service@{first.address}|sip:service@{second.address}\n")
    thread = threading.Thread(target=lookup.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        proxy = kamrouter_with(
            lab, {"core": {"load_modules": ["http_client"]},
                  "routing": {"script": str(EXAMPLES / "http_routing.py")}},
            env={"KAMROUTER_LOOKUP_URL": f"http://{LOOPBACK}:{lookup.server_address[1]}/?u=",
                 "KAMROUTER_FORKING": forking})
        lab.run(lab.uac("uac.xml", to=proxy.address), first, second)
    finally:
        lookup.shutdown()
        lookup.server_close()
    assert lookup.paths == ["/?u=service"]
