"""Loopback ports chosen at run time, and probes for when a peer is listening on one."""
from __future__ import annotations

import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port that is free on 127.0.0.1 for both UDP and TCP right now.

    Proxies listen on both transports on one port number, so both must be free; another
    process may still take it before our peer binds it, which only costs a failed start.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port = tcp.getsockname()[1]
            if port in _handed_out:  # the kernel hands a just-released port out again
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port


def free_port_for(worker: int, workers: int) -> int:
    """A free port from which a datagram to a router of ``workers`` processes reaches
    worker ``worker`` (the kernel spreads unmarked datagrams by source port, its lowest
    bit left out, modulo the workers: kamrouter/transport/steering.py): load generators
    that split evenly."""
    while True:
        port = free_port()
        if (port >> 1) % max(1, workers) == worker % max(1, workers):
            return port


#: Ports this test process has handed out: two peers started together never get the same one.
_handed_out: set[int] = set()


def udp_bound(port: int) -> bool:
    """Whether some socket is bound to UDP ``port`` (read from /proc, so no bind race)."""
    return _proc_net_has("udp", port, state=None)


def tcp_listening(port: int) -> bool:
    """Whether some socket is listening on TCP ``port``."""
    return _proc_net_has("tcp", port, state="0A")


def tcp_accepts(port: int, timeout: float = 0.5, host: str = LOOPBACK) -> bool:
    """Whether a TCP connection to ``host`` (127.0.0.1):``port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_net_has(table: str, port: int, state: str | None) -> bool:
    wanted = f":{port:04X}"
    for name in (table, table + "6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(wanted) and (state is None or fields[3] == state):
                return True
    return False
