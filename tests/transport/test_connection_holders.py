"""Which worker holds a connection (kamrouter/transport/holders.py), over two real state
buses in one process: an opened connection is known in the other worker, a closed one
forgotten, a restarted worker's predecessor's connections dropped everywhere, and a
malformed message is refused (counted by the bus), never raised."""
from __future__ import annotations

from pathlib import Path

from kamrouter.net import Endpoint
from kamrouter.transport.holders import ConnectionHolders
from support.bus import BusWorker

PHONE = Endpoint("tcp", "127.0.0.1", 40000)
BROWSER = Endpoint("ws", "::1", 50000)


def pair(tmp_path: Path) -> tuple[BusWorker, ConnectionHolders, BusWorker, ConnectionHolders]:
    first, second = BusWorker(0, tmp_path), BusWorker(1, tmp_path)
    own: dict[int, list[Endpoint]] = {0: [PHONE], 1: [BROWSER]}
    return (first, ConnectionHolders(first.bus, 2, lambda: own[0]),
            second, ConnectionHolders(second.bus, 2, lambda: own[1]))


def test_connections_are_known_in_the_other_worker(tmp_path: Path) -> None:
    first, first_held, second, second_held = pair(tmp_path)
    second_held.opened(PHONE)
    second_held.opened(BROWSER)
    second.deliver_to(first)
    assert first_held.holder(PHONE) == 1 and first_held.holder(BROWSER) == 1
    assert second_held.holder(PHONE) is None  # its own: not another worker's
    second_held.closed(PHONE)
    second.deliver_to(first)
    assert first_held.holder(PHONE) is None and first_held.holder(BROWSER) == 1
    # Worker 1 restarts: its successor's first message forgets what it held.
    restarted = BusWorker(1, tmp_path)
    restarted.bus.pid += 1  # another process
    ConnectionHolders(restarted.bus, 2, list)
    restarted.deliver_to(first)
    assert first_held.held == {}


def test_a_starting_worker_loads_the_others_connections_but_not_its_predecessors(
        tmp_path: Path) -> None:
    first, first_held, second, second_held = pair(tmp_path)
    first_held.opened(PHONE)
    first.deliver_to(second)
    dump = first_held.dump() + [[0, "tls", "127.0.0.9", 5061], [1, "tcp", "127.0.0.8", 9]]
    second_held.load(dump)
    assert second_held.held == {PHONE: 0, Endpoint("tls", "127.0.0.9", 5061): 0}
    assert second_held.dump() == [[1, *BROWSER], [0, *PHONE], [0, "tls", "127.0.0.9", 5061]]


def test_malformed_messages_are_refused_and_counted(tmp_path: Path) -> None:
    first, first_held, second, second_held = pair(tmp_path)
    for bad in ([], [1, "udp", "127.0.0.1", 5060, 1], [0, "tcp", "127.0.0.1", 5060, 1],
                [5], [1, "tcp", "127.0.0.1", 0, 1], [1, "tcp", "x" * 100, 5060, 1],
                [1, "tcp", "127.0.0.1", 5060, 3], "junk", [True]):
        second.bus.publish("connections", bad)
    second.deliver_to(first)
    assert first_held.held == {}
    assert first.stats.get("bus", "dropped_malformed").value == 9  # type: ignore[union-attr]


def test_the_caps_count_the_other_workers_connections_not_their_aliases(
        tmp_path: Path) -> None:
    first, first_held, second, second_held = pair(tmp_path)
    second_held.opened(PHONE)
    second_held.opened(Endpoint("tcp", "127.0.0.1", 40001))
    second_held.aliased(Endpoint("tcp", "127.0.0.1", 5060))  # RFC 5923: no connection
    second_held.opened(BROWSER)
    second.deliver_to(first)
    assert (first_held.count(), first_held.count("127.0.0.1"), first_held.count("::1")) == (
        3, 2, 1)
    assert first_held.holder(Endpoint("tcp", "127.0.0.1", 5060)) == 1
    second_held.closed(PHONE)
    second_held.closed(Endpoint("tcp", "127.0.0.1", 5060))
    second.deliver_to(first)
    assert (first_held.count(), first_held.count("127.0.0.1")) == (2, 1)
    restarted = BusWorker(1, tmp_path)
    restarted.bus.pid += 1
    ConnectionHolders(restarted.bus, 2, list)
    restarted.deliver_to(first)
    assert (first_held.count(), first_held.count("::1")) == (0, 0)
