"""The send hand-off in the transports (kamrouter/transport/manager.py): a message for a
connection another worker holds is handed to it instead of opening a connection here; one
handed over for a connection this worker does not hold is dropped and counted, never sent
on a new connection, and nothing raises."""
from __future__ import annotations

import time

from kamrouter.net import Endpoint
from kamrouter.stats import StatsRegistry
from kamrouter.transport import Transports
from kamrouter.transport.holders import ConnectionHolders
from kamrouter.transport.tcp import TcpConfig
from support.ports import LOOPBACK, free_port

BROWSER = Endpoint("ws", LOOPBACK, 50123)
INVITE = b"INVITE sip:alice@x.invalid;transport=ws SIP/2.0\r\n\r\n"


class RecordedHandoff:
    def __init__(self, stats: StatsRegistry) -> None:
        self.dropped = stats.counter("core", "handoff_dropped")
        self.handed: list[tuple[int, Endpoint, bytes]] = []
        self.full = False

    def close(self) -> None:
        pass

    def send_over(self, target: int, peer: Endpoint, data: bytes) -> bool:
        if self.full:
            return False
        self.handed.append((target, peer, data))
        return True


class Bus:
    index = 0

    def publish(self, channel: str, payload: object) -> None:
        pass

    def register(self, name: str, channel: object) -> None:
        pass


def transports() -> tuple[Transports, RecordedHandoff, StatsRegistry]:
    stats = StatsRegistry()
    port = free_port()
    layer = Transports([Endpoint("udp", LOOPBACK, port), Endpoint("ws", LOOPBACK, port)],
                       TcpConfig(), 65535, stats, time.monotonic)
    handoff = RecordedHandoff(stats)
    layer.handoff = handoff  # type: ignore[assignment]
    layer.holders = ConnectionHolders(Bus(), 2, list)
    return layer, handoff, stats


def test_a_message_for_another_workers_connection_is_handed_to_it() -> None:
    layer, handoff, _ = transports()
    try:
        errors: list[str] = []
        assert not layer.connected(BROWSER)
        layer.send(INVITE, BROWSER, None, lambda: errors.append("no connection"))
        assert handoff.handed == [] and errors == ["no connection"]  # nobody holds it
        layer.holders.held[BROWSER] = 1  # type: ignore[union-attr]
        assert layer.connected(BROWSER)  # the registrar's lookup reaches it
        layer.send(INVITE, BROWSER, None, lambda: errors.append("full"))
        assert handoff.handed == [(1, BROWSER, INVITE)]
        handoff.full = True  # the other worker's socket is full: the send failed
        layer.send(INVITE, BROWSER, None, lambda: errors.append("full"))
        assert errors == ["no connection", "full"]
    finally:
        layer.close()


def test_a_message_handed_over_for_a_connection_not_held_here_is_dropped() -> None:
    layer, handoff, stats = transports()
    try:
        layer._send_handed(INVITE, BROWSER, 1)
        layer._send_handed(INVITE, Endpoint("tcp", LOOPBACK, 5060), 1)  # never opened
        assert stats.get("core", "handoff_dropped").value == 2  # type: ignore[union-attr]
        assert stats.get("tcp", "connect_success").value == 0  # type: ignore[union-attr]
        assert layer.tcp is not None and not layer.tcp.reaches(BROWSER)
    finally:
        layer.close()
