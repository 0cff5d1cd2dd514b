"""API routing setups for load runs: ``benchmarks/cps.py --routing api-http|api-evapi``.

Every call is routed by a reference controller (examples/controllers) that answers a
one-route serial document pointing at the benchmark's UAS::

    from api_routing import ApiRouting

    routing = ApiRouting("api-evapi", target="127.0.0.1:5080", workdir=tmp)
    config_sections = routing.sections     # merge into the kamrouter TOML ([routing], [api], ...)
    ... start kamrouter with them ...
    routing.start_controller()             # after kamrouter listens (evapi dials in)
    ... run sipp: uac -> kamrouter, uas at target ...
    routing.stop()                         # stops the controller

``api-http``: the controller is an HTTP server, kamrouter POSTs one event per call over
pooled keep-alive connections. ``api-evapi``: the controller connects to kamrouter's evapi
socket and answers each event on it. Compare ``api:latency_le_*`` and ``api:fallbacks``
(should stay 0) with ``stats.fetchn api:`` after the run.

Run as a script, it measures how fast calls fall back when the controller is not running
(the first call finds the connection refused and opens the circuit; the others fall back
without asking)::

    .venv/bin/python benchmarks/api_routing.py [--calls 20]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from api.harness import Controller, evapi_controller, http_controller  # noqa: E402
from support.ports import LOOPBACK, free_port  # noqa: E402
from support.proxy import kamrouter_proxy  # noqa: E402

from kamrouter.sip import Response, make_ack, make_request, parse  # noqa: E402

Kind = Literal["api-http", "api-evapi"]
KINDS: tuple[Kind, ...] = ("api-http", "api-evapi")


class ApiRouting:
    """kamrouter config sections for API routing plus the controller process behind them."""

    def __init__(self, kind: Kind, *, target: str, workdir: Path, timeout: float = 2.0) -> None:
        if kind not in KINDS:
            raise ValueError(f"--routing: expected one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        self.workdir = workdir
        self.table = {"": {"routing": "serial", "routes": [{"uri": f"sip:service@{target}"}]}}
        self.controller: Controller | None = None
        api: dict[str, Any] = {"timeout": timeout, "on_error": "reply 503"}
        self.sections: dict[str, dict[str, Any]] = {"routing": {"mode": "api"}, "api": api}
        if kind == "api-http":
            # The HTTP controller can (and must) be up before kamrouter takes calls.
            self.controller, url = http_controller(workdir / "controller", self.table)
            api.update(transport="http", url=url)
        else:
            self.evapi_port = free_port()
            api.update(transport="evapi")
            self.sections["evapi"] = {"bind_addr": f"{LOOPBACK}:{self.evapi_port}",
                                      "queue_size": 8192}

    def start_controller(self) -> None:
        """For api-evapi: connect the controller to the running kamrouter (returns once
        connected). Nothing to do for api-http."""
        if self.kind == "api-evapi" and self.controller is None:
            self.controller = evapi_controller(self.workdir / "controller", self.table,
                                               self.evapi_port)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def fallback_times(calls: int, workdir: Path) -> list[float]:
    """INVITE -> on_error reply (503) in ms, one call after the other, with no controller
    listening at the configured URL."""
    nobody = f"http://{LOOPBACK}:{free_port()}/"
    proxy = kamrouter_proxy(workdir, free_port(), sections={
        "core": {"log_level": "error"}, "routing": {"mode": "api"},
        "api": {"transport": "http", "url": nobody, "timeout": 2.0, "on_error": "reply 503"}})
    proxy.start()
    times = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((LOOPBACK, 0))
            sock.settimeout(5)
            host, port = sock.getsockname()[:2]
            here = f"{host}:{port}"
            for number in range(calls):
                invite = make_request("INVITE", f"sip:+4930123@{proxy.address}",
                                      from_uri=f"sip:caller@{here}",
                                      to_uri=f"sip:+4930123@{proxy.address}",
                                      via=f"SIP/2.0/UDP {here}", call_id=f"fallback-{number}")
                started = time.perf_counter()
                sock.sendto(invite.to_bytes(), (LOOPBACK, proxy.port))
                reply = parse(sock.recv(65535))
                while not isinstance(reply, Response) or reply.status < 200:
                    reply = parse(sock.recv(65535))
                times.append((time.perf_counter() - started) * 1000)
                assert reply.status == 503, f"expected the on_error 503, got {reply.status}"
                sock.sendto(make_ack(invite, reply).to_bytes(), (LOOPBACK, proxy.port))
    finally:
        proxy.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description="on_error fallback time with the API down")
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    if args.calls < 2:
        parser.error("--calls: at least 2 (the first call differs from the others)")
    with tempfile.TemporaryDirectory(prefix="kamrouter-fallback-") as workdir:
        first, *rest = fallback_times(args.calls, Path(workdir))
    print(f"controller not running, on_error 'reply 503': first call {first:.2f} ms "
          f"(connection refused), then median {statistics.median(rest):.2f} ms, "
          f"max {max(rest):.2f} ms over {len(rest)} calls (circuit open)")


if __name__ == "__main__":
    main()
