"""RFC 5626 flow tokens: the tokens themselves, and the pipeline putting them in
Record-Route on the side of a client reachable only over its connection and following
them back (tests/support/pipeline.py: no sockets)."""
from __future__ import annotations

from pathlib import Path

from kamrouter.net import Endpoint
from kamrouter.pipeline.flow import FlowTokens, connection_only, flow_uri
from kamrouter.sip import Request, make_response
from support.pipeline import PROXY, Pipeline

PEER = Endpoint("wss", "::1", 40123)
WS_LOCAL = Endpoint("ws", "127.0.0.1", 8080)
TCP_LOCAL = Endpoint("tcp", "127.0.0.1", 5060)
BROWSER = Endpoint("ws", "127.0.0.9", 40000)
CALLEE = Endpoint("udp", "127.0.0.3", 5080)
RELAY = """
def request_route(msg):
    if rr.loose_route(msg):
        tm.relay(msg)
        return
    rr.record_route(msg)
    tm.relay(msg)
"""


def test_a_token_names_its_connection() -> None:
    tokens = FlowTokens(b"k" * 32)
    token = tokens.encode(PEER)
    assert token.isalnum() and token == token.lower()
    assert tokens.decode(token) == PEER
    assert flow_uri(PEER) == "sip:[::1]:40123;transport=wss"


def test_a_forged_or_foreign_token_is_ignored() -> None:
    token = FlowTokens(b"k" * 32).encode(PEER)
    assert FlowTokens(b"o" * 32).decode(token) is None
    assert FlowTokens(b"k" * 32).decode(token[:-2] + ("a" if token[-2] != "a" else "b")
                                        + token[-1]) is None
    for junk in ("", "alice", "!!!", "a" * 200, "é"):
        assert FlowTokens(b"k" * 32).decode(junk) is None


def test_which_uris_name_no_address() -> None:
    assert connection_only("sip:alice@df7jal23ls0d.invalid;transport=ws")
    assert connection_only("sip:alice@192.0.2.1:5060;transport=tcp;ob")
    assert not connection_only("sip:alice@192.0.2.1:5060;transport=tcp")
    assert not connection_only("sip:alice@invalid.example;obfuscated=1")


def invite(proto: str, contact_host: str) -> str:
    return (f"INVITE sip:bob@127.0.0.3:5080 SIP/2.0\n"
            f"Via: SIP/2.0/{proto.upper()} {contact_host};branch=z9hG4bK-f1\n"
            f"From: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>\n"
            f"Call-ID: flow-1\nCSeq: 1 INVITE\nMax-Forwards: 70\n"
            f"Contact: <sip:alice@{contact_host};transport={proto}>\nContent-Length: 0\n\n")


def relayed(pipe: Pipeline) -> Request:
    ((forwarded, dest),) = [(m, d) for m, d in pipe.take() if isinstance(m, Request)]
    assert dest == CALLEE and isinstance(forwarded, Request)
    return forwarded


def test_a_browser_call_carries_its_flow_and_the_callee_s_bye_follows_it(
        tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY, sockets=(PROXY, WS_LOCAL))
    pipe.receive(invite("ws", "x1.invalid"), BROWSER, WS_LOCAL)
    forwarded = relayed(pipe)
    outer, inner = forwarded.get_all("Record-Route")
    assert outer == "<sip:127.0.0.1:5060;lr;r2=on>"
    token = inner[len("<sip:"):inner.index("@")]
    assert inner.endswith("@127.0.0.1:8080;transport=ws;lr;r2=on>")
    assert pipe.proxy.flow_tokens.decode(token) == BROWSER
    pipe.receive(make_response(forwarded, 200, to_tag="b1").to_bytes(), CALLEE)
    pipe.take()
    bye = (f"BYE sip:alice@x1.invalid;transport=ws SIP/2.0\n"
           f"Via: SIP/2.0/UDP 127.0.0.3:5080;branch=z9hG4bK-bye\n"
           f"Route: {outer}\nRoute: {inner}\n"
           f"From: <sip:bob@example.com>;tag=b1\nTo: <sip:alice@example.com>;tag=a1\n"
           f"Call-ID: flow-1\nCSeq: 1 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n")
    pipe.receive(bye, CALLEE)
    ((sent, dest),) = pipe.take()
    assert dest == BROWSER and isinstance(sent, Request) and sent.method == "BYE"


def test_a_tcp_client_says_whether_it_has_an_address(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY, sockets=(PROXY, TCP_LOCAL))
    client = Endpoint("tcp", "127.0.0.9", 40001)
    pipe.receive(invite("tcp", "x2.invalid"), client, TCP_LOCAL)
    inner = relayed(pipe).get_all("Record-Route")[1]
    assert pipe.proxy.flow_tokens.decode(inner[len("<sip:"):inner.index("@")]) == client
    other = Pipeline(tmp_path, RELAY, sockets=(PROXY, TCP_LOCAL))
    other.receive(invite("tcp", "127.0.0.9:5090"), client, TCP_LOCAL)
    assert "@" not in "".join(relayed(other).get_all("Record-Route"))  # reachable: no token
