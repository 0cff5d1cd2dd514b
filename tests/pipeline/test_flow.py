"""RFC 5626 flow tokens: round trip, and nothing else decodes."""
from __future__ import annotations

from kamrouter.net import Endpoint
from kamrouter.pipeline.flow import FlowTokens, flow_uri

PEER = Endpoint("wss", "::1", 40123)


def test_a_token_names_its_connection_and_only_for_websocket_peers() -> None:
    tokens = FlowTokens(b"k" * 32)
    token = tokens.for_peer(PEER)
    assert token is not None and token.isalnum() and token == token.lower()
    assert tokens.decode(token) == PEER
    assert flow_uri(PEER) == "sip:[::1]:40123;transport=wss"
    assert tokens.for_peer(Endpoint("udp", "127.0.0.1", 5060)) is None
    assert tokens.for_peer(None) is None


def test_a_forged_or_foreign_token_is_ignored() -> None:
    token = FlowTokens(b"k" * 32).encode(PEER)
    assert FlowTokens(b"o" * 32).decode(token) is None
    assert FlowTokens(b"k" * 32).decode(token[:-2] + ("a" if token[-2] != "a" else "b")
                                        + token[-1]) is None
    for junk in ("", "alice", "!!!", "a" * 200, "é"):
        assert FlowTokens(b"k" * 32).decode(junk) is None
