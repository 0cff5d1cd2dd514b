"""CPU cost of one call through the proxy pipeline, in process: no sockets, no sipp.

A caller and a callee are simulated with the SIP library: INVITE → (100) → 180 → 200 → ACK
→ BYE → 200, record-routed, through a real :class:`~kamrouter.core.router.Router` running
the default routing script, with the transports' ``send`` replaced by a list. Only the time
inside the router's receive path is counted: the Python work per call (parse, tm, script,
relay, serialise; timer callbacks excepted) — the part of
``benchmarks/cps.py``'s CPU figure that does not depend on the kernel or on sipp, and a
stable target for profiling:

    .venv/bin/python benchmarks/pipeline.py [--calls N] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable

from kamrouter.core.router import Router
from kamrouter.core.settings import Settings
from kamrouter.net import Endpoint
from kamrouter.sip import Request, make_response, parse

CALLER = Endpoint("udp", "127.0.0.1", 5071)
CALLEE = Endpoint("udp", "127.0.0.1", 5072)


class Wire:
    """Stands in for the transports: remembers what the router sent, per destination."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Endpoint]] = []

    def send(self, data: bytes, dest: Endpoint, local: Endpoint | None, on_error: object) -> None:
        self.sent.append((data, dest))

    def last_to(self, dest: Endpoint) -> bytes:
        for data, where in reversed(self.sent):
            if where == dest:
                return data
        raise AssertionError(f"nothing was sent to {dest}")


def build_router(settings: Settings | None = None) -> tuple[Router, Wire, Endpoint]:
    """A router on ``settings`` (default: every default, the default script) whose sends
    are recorded by a Wire."""
    if settings is None:
        settings = Settings()
        settings.core.listen = ["udp:127.0.0.1:0"]
    router = Router(settings)
    wire = Wire()
    router.transports.send = wire.send  # type: ignore[method-assign]
    router.tm.send = wire.send
    local = router.sockets[0]
    router.proxy.identity.add(local)
    return router, wire, local


def invite(n: int, proxy: Endpoint) -> bytes:
    body = b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" \
           b"m=audio 9 RTP/AVP 0\r\n"
    return (f"INVITE sip:callee@{CALLEE.host}:{CALLEE.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {CALLER.host}:{CALLER.port};branch=z9hG4bK-c{n}-1\r\n"
            f"From: <sip:caller@{CALLER.host}:{CALLER.port}>;tag=caller{n}\r\n"
            f"To: <sip:callee@{CALLEE.host}:{CALLEE.port}>\r\n"
            f"Call-ID: call-{n}@bench\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:caller@{CALLER.host}:{CALLER.port}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def in_dialog(method: str, n: int, cseq: int, route: str, branch: str) -> bytes:
    return (f"{method} sip:callee@{CALLEE.host}:{CALLEE.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {CALLER.host}:{CALLER.port};branch={branch}\r\n"
            f"Route: {route}\r\n"
            f"From: <sip:caller@{CALLER.host}:{CALLER.port}>;tag=caller{n}\r\n"
            f"To: <sip:callee@{CALLEE.host}:{CALLEE.port}>;tag=callee{n}\r\n"
            f"Call-ID: call-{n}@bench\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


def answer(request_bytes: bytes, status: int, n: int) -> bytes:
    request = parse(request_bytes)
    assert isinstance(request, Request)
    return make_response(request, status, to_tag=f"callee{n}",
                         headers=[("Contact", f"<sip:callee@{CALLEE.host}:{CALLEE.port}>")]
                         ).to_bytes()


def one_call(router: Router, wire: Wire, proxy: Endpoint, n: int) -> float:
    """Seconds the router spent on one call (the simulated peers' own work not counted)."""
    receive = router.proxy.on_message
    clock = time.perf_counter
    spent = 0.0

    def deliver(data: bytes, source: Endpoint) -> None:
        nonlocal spent
        started = clock()
        receive(data, source, proxy)
        spent += clock() - started

    deliver(invite(n, proxy), CALLER)
    forwarded = wire.last_to(CALLEE)
    deliver(answer(forwarded, 180, n), CALLEE)
    deliver(answer(forwarded, 200, n), CALLEE)
    route = parse(forwarded).get("Record-Route") or ""
    deliver(in_dialog("ACK", n, 1, route, f"z9hG4bK-c{n}-2"), CALLER)
    deliver(in_dialog("BYE", n, 2, route, f"z9hG4bK-c{n}-3"), CALLER)
    deliver(answer(wire.last_to(CALLEE), 200, n), CALLEE)
    wire.sent.clear()
    return spent


def run(calls: int) -> float:
    router, wire, proxy = build_router()
    one_call(router, wire, proxy, 0)  # warm up caches and imports
    spent = 0.0
    for n in range(1, calls + 1):
        spent += one_call(router, wire, proxy, n)
        if n % 1000 == 0:
            # Free transactions as the wait timer would: keeps memory flat.
            router.scheduler.fire_due(router.clock() + 3600)
    return spent / calls


def best_of_3_or_profile(run: Callable[[int], float], count: int,
                         profile: bool) -> float | None:
    """``run(count)``'s best of 3 (seconds per item); with ``profile``, print the top of a
    cProfile of one run instead and return None."""
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, count)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return None
    return min(run(count) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = parser.parse_args()
    best = best_of_3_or_profile(run, args.calls, args.profile)
    if best is None:
        return
    print(f"one call (7 messages in, 7 out) through the pipeline: {best * 1e6:.0f} us "
          f"(best of 3 x {args.calls} calls) = {1 / best:,.0f} calls/s of pure Python work")


if __name__ == "__main__":
    main()
