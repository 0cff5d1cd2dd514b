"""Running one OPTIONS probe over UDP with RFC 3261 retransmissions (timer E)."""
from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass

from kamcli_sipcheck.message import Probe, parse_response

T1, T2 = 0.5, 4.0


@dataclass(frozen=True)
class Result:
    status: int | None      # None: no final response
    reason: str
    latency_ms: float | None
    transmissions: int
    server: str


def probe_once(ruri: str, proxy: tuple[str, int], wait: float, user_agent: str) -> Result:
    family = socket.AF_INET6 if ":" in proxy[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect(proxy)
        local_host, local_port = sock.getsockname()[:2]
        probe = Probe.new(ruri)
        request = probe.request(local_host, local_port, user_agent)
        start = time.perf_counter()
        deadline, interval = start + wait, T1
        next_send, sent = start, 0
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return Result(None, "timeout", None, sent, "")
            if now >= next_send:
                sock.send(request)
                sent += 1
                next_send, interval = now + interval, min(interval * 2, T2)
            readable, _, _ = select.select([sock], [], [], min(next_send, deadline) - now)
            if not readable:
                continue
            try:
                data = sock.recv(65535)
            except ConnectionRefusedError:
                return Result(None, "port unreachable (no SIP listener)", None, sent, "")
            response = parse_response(data)
            if response is None or not response.answers(probe):
                continue
            if response.status < 200:  # provisional: keep waiting, stop hammering
                next_send = deadline
                continue
            latency = (time.perf_counter() - start) * 1000
            server = response.headers.get("server") or response.headers.get("user-agent", "")
            return Result(response.status, response.reason, round(latency, 3), sent, server)
