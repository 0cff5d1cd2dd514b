"""The api module's parts: config, circuit breaker, answer reading, and decide() over real
HTTP, JSON-RPC and evapi peers on 127.0.0.1."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from kamrouter.config import build_section
from kamrouter.modules.api import ApiConfig, ApiModule
from kamrouter.modules.api.breaker import CircuitBreaker
from kamrouter.modules.api.config import DispatcherFallback, ReplyFallback, parse_on_error
from kamrouter.modules.api.controllers import ControllerFailure, redirect_document
from kamrouter.modules.api.decision import interpret
from kamrouter.modules.api.event import build_event
from kamrouter.core.router import available_modules
from support.doubles import FakeClock
from support.jsonpeer import JsonPeer as Peer
from kamrouter.modules.evapi import EvapiConfig, EvapiModule
from kamrouter.modules.evapi.framing import NetstringDecoder, encode_netstring
from kamrouter.modules.rtjson import RouteDocumentError
from kamrouter.sip import parse

from support.wait import TIMEOUT

from .conftest import ModuleHost

DOCUMENT = {"routing": "serial", "routes": [{"uri": "sip:a@127.0.0.1:5071"}]}


def call(tindex: int = 7, tlabel: int = 9) -> Any:
    headers = {"User-Agent": "sipp"}
    return SimpleNamespace(
        tindex=tindex, tlabel=tlabel, method="INVITE", ruri="sip:+4930123@proxy",
        ruri_user="+4930123", from_user="alice", from_uri="sip:alice@example.com",
        to_uri="sip:+4930123@example.com", call_id="c1", src_ip="127.0.0.1", src_port=5061,
        proto="udp", get_header=headers.get)


# -- config ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("reply 503", ReplyFallback(503, "Service Unavailable")),
    ("reply 480 Try Later", ReplyFallback(480, "Try Later")),
    ("dispatcher 2", DispatcherFallback(2, 4)),
    ("dispatcher 1 8", DispatcherFallback(1, 8)),
])
def test_on_error_forms(text: str, expected: object) -> None:
    assert parse_on_error(text) == expected


def test_config_problems_name_their_keys() -> None:
    problems: list[str] = []
    build_section(ApiConfig, {"transport": "http", "url": "127.0.0.1:80", "timeout": 0,
                              "methods": ["invite"], "on_error": "reply 200",
                              "failover_codes": "4[0-9", "breaker_threshold": 0}, "api", problems)
    assert problems == [
        "api.url: transport 'http' needs an http:// or https:// URL, got '127.0.0.1:80'",
        "api.methods[0]: expected an upper-case SIP method, got 'invite'",
        "api.on_error: expected 'reply <300-699> [reason]' or 'dispatcher <set> [alg]', "
        "got 'reply 200'",
        "api.failover_codes: not a regular expression: unterminated character set at position 1",
        "api.timeout: must be between 0.01 and 300 s, got 0",
        "api.breaker_threshold: must be between 1 and 1000, got 0",
    ]
    problems.clear()
    build_section(ApiConfig, {"transport": "sip", "url": "http://x"}, "api", problems)
    assert problems == ["api.url: transport 'sip' needs the redirect server: expected a sip: "
                        "or sips: URI, got 'http://x' (Unsupported URI Scheme: http)"]
    problems.clear()
    build_section(ApiConfig, {"transport": "grpc"}, "api", problems)
    assert problems == ["api.transport: expected one of 'http', 'evapi', 'jsonrpc', 'sip', "
                        "got string 'grpc'",
                        "api.url: transport 'http' needs an http:// or https:// URL, got ''"]


# -- circuit breaker (fake clock) ------------------------------------------------------------

def test_breaker_opens_after_threshold_and_probes_after_retry() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, retry_after=2.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow() and breaker.retry_in() == 2.0
    clock.now += 1.5
    assert not breaker.allow() and breaker.retry_in() == 0.5
    clock.now += 0.5
    assert breaker.allow() and breaker.state == "half-open"
    assert not breaker.allow(), "only one probe at a time"
    breaker.failure()
    assert breaker.state == "open" and breaker.retry_in() == 2.0, "a failed probe re-opens"
    clock.now += 2.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.failures == 0 and breaker.allow()


def test_breaker_opens_at_once_when_the_api_is_down() -> None:
    breaker = CircuitBreaker(threshold=3, retry_after=1.0, clock=FakeClock())
    breaker.failure(down=True)
    assert breaker.state == "open"


def test_success_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=2, retry_after=1.0, clock=FakeClock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"


# -- event and answers -------------------------------------------------------------------------

def test_event_document() -> None:
    assert build_event(call(), ["User-Agent", "X-Missing"]) == {
        "event": "sip-routing", "version": "1.0", "id": "7:9", "tindex": 7, "tlabel": 9,
        "method": "INVITE", "ruri": "sip:+4930123@proxy", "caller": "alice",
        "callee": "+4930123", "from": "sip:alice@example.com", "to": "sip:+4930123@example.com",
        "call_id": "c1", "source_address": "127.0.0.1", "source_port": 5061,
        "transport": "udp", "headers": {"User-Agent": "sipp"}}


def test_interpret_document_and_reply() -> None:
    assert interpret(DOCUMENT).document.routes[0].uri == "sip:a@127.0.0.1:5071"
    assert interpret({"reply": {"code": 404, "reason": "No Route"}}).reply == ReplyFallback(
        404, "No Route")
    with pytest.raises(RouteDocumentError, match=r"reply\.code: expected integer 300-699"):
        interpret({"reply": {"code": 200}})
    with pytest.raises(RouteDocumentError, match="routing: expected 'serial' or 'parallel'"):
        interpret({"routes": [{}]})


def test_redirect_contacts_ordered_by_q() -> None:
    response = parse(
        b"SIP/2.0 302 Moved\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
        b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b"Contact: <sip:low@h>;q=0.1, <sip:none@h>\r\nContact: <sip:mid@h>;q=0.5\r\n"
        b"Content-Length: 0\r\n\r\n")
    assert [r["uri"] for r in redirect_document(response)["routes"]] == [
        "sip:none@h", "sip:mid@h", "sip:low@h"]
    no_contact = parse(response.to_bytes().replace(b"Contact: <sip:low@h>;q=0.1, <sip:none@h>"
                                                   b"\r\nContact: <sip:mid@h>;q=0.5\r\n", b""))
    with pytest.raises(ControllerFailure, match="without Contacts"):
        redirect_document(no_contact)


# -- decide() against real peers ------------------------------------------------------------------

@pytest.fixture
def peer_factory() -> Iterator[Any]:
    peers: list[Peer] = []

    def make(answer: Any) -> Peer:
        peer = Peer(answer).serve_in_thread()
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()


async def api_module(host: ModuleHost, nursery: trio.Nursery, **options: Any) -> ApiModule:
    problems: list[str] = []
    config = build_section(ApiConfig, options, "api", problems)
    assert not problems, problems
    for name in ApiModule.requires(config):  # as the router's loader does
        if name not in host.modules:
            cls = available_modules()[name].load()
            host.modules[name] = cls(host, cls.Config() if cls.Config else None)
            await host.modules[name].start(nursery)
    module = ApiModule(host, config)
    await module.start(nursery)
    return module


async def test_http_answer_is_the_decision(host: ModuleHost, nursery: trio.Nursery,
                                           peer_factory: Any) -> None:
    peer = peer_factory(DOCUMENT)
    module = await api_module(host, nursery, transport="http", url=peer.url)
    decision = await module.decide(call())
    assert decision.document is not None and not decision.fallback
    assert peer.events[0]["event"] == "sip-routing" and peer.events[0]["callee"] == "+4930123"
    assert host.stat("api:answers") == 1 and host.stat("api:latency_le_inf") == 1
    assert host.stat("api:latency_le_1000ms") == 1  # a local peer: well under a second
    await module.stop()


async def test_jsonrpc_result_is_the_decision(host: ModuleHost, nursery: trio.Nursery,
                                              peer_factory: Any) -> None:
    peer = peer_factory({"result": DOCUMENT})
    module = await api_module(host, nursery, transport="jsonrpc", url=peer.url,
                              rpc_method="route_call")
    decision = await module.decide(call())
    assert decision.document is not None
    assert peer.events[0]["method"] == "route_call"
    assert peer.events[0]["params"]["id"] == "7:9"
    await module.stop()


async def test_jsonrpc_error_falls_back_but_keeps_the_circuit_closed(
        host: ModuleHost, nursery: trio.Nursery, peer_factory: Any) -> None:
    peer = peer_factory({"error": {"code": -32601, "message": "Method not found"}})
    module = await api_module(host, nursery, transport="jsonrpc", url=peer.url,
                              on_error="reply 480 Later")
    decision = await module.decide(call())
    assert decision.fallback and decision.reply == ReplyFallback(480, "Later")
    assert module.breaker.state == "closed"
    assert "Method not found" in module.rpc_status()["last_error"]
    await module.stop()


@pytest.mark.parametrize(("transport", "answer", "limit"), [
    ("http", b'{"routes":' + b"[" * 20000 + b"]" * 20000 + b"}", "max_json_depth"),
    ("http", b'{"routes":[' + b"9" * 5000 + b"]}", "max_json_digits"),
    ("jsonrpc", b'{"jsonrpc":"2.0","id":1,"result":' + b"[" * 20000 + b"]" * 20000 + b"}",
     "max_json_depth"),
    ("jsonrpc", b'{"jsonrpc":"2.0","id":1,"result":' + b"9" * 5000 + b"}", "max_json_digits"),
], ids=["http-deep", "http-digits", "jsonrpc-deep", "jsonrpc-digits"])
async def test_answer_past_the_json_limits_falls_back_and_is_counted(
        host: ModuleHost, nursery: trio.Nursery, peer_factory: Any, transport: str,
        answer: bytes, limit: str) -> None:
    peer = peer_factory(answer)
    module = await api_module(host, nursery, transport=transport, url=peer.url,
                              on_error="reply 480 Later")
    decision = await module.decide(call())
    assert decision.fallback and decision.reply == ReplyFallback(480, "Later")
    assert limit in module.rpc_status()["last_error"]
    assert host.stat("api:refused_json_limit") == 1 and host.stat("api:errors") == 1
    assert module.breaker.state == "closed"  # the API answered: not held against its health
    await module.stop()


async def test_evapi_without_controller_falls_back_then_recovers(
        host: ModuleHost, nursery: trio.Nursery, mock_clock: trio.testing.MockClock) -> None:
    evapi = host.modules["evapi"] = EvapiModule(host, EvapiConfig(bind_addr="127.0.0.1:0"))
    await evapi.start(nursery)
    module = await api_module(host, nursery, transport="evapi", breaker_retry=2.0)
    assert (await module.decide(call(1))).fallback
    assert module.breaker.state == "open"
    assert (await module.decide(call(2))).fallback
    assert host.stat("api:short_circuits") == 1 and host.stat("api:errors") == 1

    stream = await trio.open_tcp_stream(*evapi.server.address)
    deadline = time.monotonic() + TIMEOUT  # real time: the mock clock stands still here
    while not list(evapi.server.clients()):
        assert time.monotonic() < deadline, "the evapi server never saw the client"
        await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(2.0)  # the retry time is up: the next call probes the API

    async def controller() -> None:
        decoder = NetstringDecoder()
        events: list[bytes] = []
        while not events:
            events += decoder.feed(await stream.receive_some(65536))
        answer = {"id": json.loads(events[0])["id"], **DOCUMENT}
        await stream.send_all(encode_netstring(json.dumps(answer).encode()))

    nursery.start_soon(controller)
    decision = await module.decide(call(3))
    assert decision.document is not None and module.breaker.state == "closed"
    assert module.rpc_status()["answers"] == 1
