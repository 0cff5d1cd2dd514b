"""The sans-IO WebSocket codec on its own: the upgrade, framing, limits, hostile bytes."""
from __future__ import annotations

import random

import pytest

from kamrouter.transport.ws import WebsocketConfig, WsClosed, WsCodec

from support.fuzzing import Mutator, ws_frame, ws_upgrade

OPTIONS = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"


def codec(**config: object) -> WsCodec:
    return WsCodec(WebsocketConfig(**config))  # type: ignore[arg-type]


def test_frames_sent_with_the_upgrade_are_not_lost() -> None:
    ws = codec()
    ws.feed(ws_upgrade("127.0.0.1") + ws_frame(OPTIONS, random.Random(1)))
    assert ws.take_output().startswith(b"HTTP/1.1 101 ")
    assert ws.next_message() == OPTIONS and not ws.in_message


def test_an_upgrade_split_over_reads_is_one_upgrade() -> None:
    ws = codec()
    data = ws_upgrade("127.0.0.1") + ws_frame(OPTIONS, random.Random(2))
    for i in range(0, len(data), 7):
        ws.feed(data[i:i + 7])
    assert ws.take_output().startswith(b"HTTP/1.1 101 ") and ws.next_message() == OPTIONS


def test_an_origin_not_allowed_is_refused_with_403() -> None:
    ws = codec(allowed_origins=["https://phone.example"])
    with pytest.raises(WsClosed):
        ws.feed(ws_upgrade("127.0.0.1", "https://evil.example"))
    assert ws.take_output().startswith(b"HTTP/1.1 403 ")


def test_a_message_over_the_limit_closes_with_1009() -> None:
    ws = codec(max_message_size=512)
    ws.feed(ws_upgrade("127.0.0.1"))
    ws.take_output()
    with pytest.raises(WsClosed):
        ws.feed(ws_frame(b"x" * 600, random.Random(3)))
    close = ws.take_output()
    assert close[0] == 0x88 and int.from_bytes(close[2:4], "big") == 1009


def test_an_endless_upgrade_request_is_refused() -> None:
    ws = codec()
    with pytest.raises(WsClosed):
        for _ in range(20):
            ws.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 1000)
    assert ws.take_output().startswith(b"HTTP/1.1 400 ")


def test_hostile_bytes_only_ever_end_the_connection() -> None:
    mutate = Mutator(20261204)
    rng = mutate.rng
    for _ in range(2000):
        ws = codec(max_message_size=1024)
        data = ws_upgrade("127.0.0.1", rng.choice((None, "https://a.example"))) + ws_frame(
            OPTIONS, rng, opcode=rng.choice((1, 2, 8, 9, 10)))
        try:
            for chunk in mutate.chunks(mutate.case(data)):
                ws.feed(chunk)
                ws.take_output()
                while ws.next_message() is not None:
                    pass
        except WsClosed:
            pass
