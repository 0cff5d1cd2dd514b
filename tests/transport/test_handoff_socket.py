"""A worker's hand-off socket (kamrouter/transport/handoff.py) on real socket pairs: what
another worker passes on reaches the pipeline with its source and listener; bytes that are
not a hand-off, or name this worker or a worker that does not exist as their origin, are
dropped and counted, and the loop goes on."""
from __future__ import annotations

import os
import socket

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from kamrouter.net import Endpoint
from kamrouter.stats import StatsRegistry
from kamrouter.transport.handoff import (
    Handoff,
    decode,
    decode_send,
    encode,
    encode_send,
    handoff_pair,
)

LISTENER = Endpoint("udp", "127.0.0.1", 5060)
SOURCE = Endpoint("udp", "127.0.0.1", 40000)
RINGING = b"SIP/2.0 180 Ringing\r\n\r\n"


async def test_hostile_bytes_are_dropped_and_a_handoff_reaches_the_pipeline() -> None:
    (first_in, first_out), (second_in, second_out) = handoff_pair(), handoff_pair()
    inject = socket.socket(fileno=os.dup(second_out.fileno()))
    stats = StatsRegistry()
    second = Handoff(1, second_in.detach(), (first_out.detach(), second_out.detach()),
                     lambda: [LISTENER], stats)
    got: list[tuple[bytes, Endpoint, Endpoint, int]] = []
    to_send: list[tuple[bytes, Endpoint, int]] = []
    peer = Endpoint("tcp", "127.0.0.1", 40001)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(second.serve, lambda *handed: got.append(handed),
                               lambda *send: to_send.append(send))
            for bad in (b"", b"garbage \xff\x00", b"KH1 1 0 127.0.0.1 5060\nx",  # itself
                        b"KH1 5 0 127.0.0.1 5060\nx", b"KH1 0 3 127.0.0.1 5060\nx",
                        b"KS1 1 tcp 127.0.0.1 5060\nx", b"KS1 0 sctp 127.0.0.1 5060\nx"):
                inject.send(bad)
            inject.send(encode(0, 0, SOURCE, RINGING))
            inject.send(encode_send(0, peer, RINGING))
            with trio.fail_after(10):
                while not (got and to_send):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert got == [(RINGING, SOURCE, LISTENER, 0)]
        assert to_send == [(RINGING, peer, 0)]
        counted = {s.name: s.value for s in stats if s.name.startswith("handoff_")}
        assert counted == {"handoff_sent": 0, "handoff_sent_to_connection": 0,
                           "handoff_received": 2, "handoff_dropped": 7}
        # Passing on: to worker 0's socket, with this worker as the origin.
        second.send(0, 1, RINGING, SOURCE, LISTENER)
        first_in.settimeout(5)
        assert first_in.recv(70000) == encode(1, 0, SOURCE, RINGING)
        second.send(0, 1, RINGING, SOURCE, Endpoint("tcp", "127.0.0.1", 5061))  # not ours
        assert second.send_over(0, peer, RINGING)
        assert first_in.recv(70000) == encode_send(1, peer, RINGING)
        assert (stats.get("core", "handoff_sent").value,  # type: ignore[union-attr]
                stats.get("core", "handoff_sent_to_connection").value,  # type: ignore[union-attr]
                stats.get("core", "handoff_dropped").value) == (2, 1, 8)  # type: ignore[union-attr]
    finally:
        second.close()
        for sock in (inject, first_in):
            sock.close()


@given(st.binary(max_size=300), st.sampled_from([b"", b"KH1 ", b"KS1 ", b"KH1 1 0 ",
                                                 b"KS1 1 tcp ", b"KH1 " + b"9" * 80]))
@settings(max_examples=400, deadline=None)
def test_any_bytes_decode_to_a_hand_off_or_none(data: bytes, prefix: bytes) -> None:
    """Every byte value, after the magics or not: decoding never raises."""
    packet = prefix + data
    for workers in (1, 2):
        decode(packet, workers, [LISTENER])
        decode_send(packet, workers)
