"""CPU per routing-API query over HTTP, client and controller side, on 127.0.0.1.

kamrouter's HTTP client (``http_client.query``, as ``[api] transport = "http"`` uses it)
POSTs a call's routing event to the reference HTTP controller (examples/controllers) and
decodes the JSON answer, ``--queries`` times with 1, 4 and 16 queries in flight; then httpx
(``AsyncClient`` on trio) does the same, for comparison. Printed per query: the client's
CPU (this process: what the router pays per call), the controller's CPU (from /proc) and
the wall time::

    .venv/bin/python benchmarks/http_client.py [--queries 4000]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from kamrouter.modules.http_client import HttpClientApi, HttpClientConfig
from kamrouter.modules.http_client.pool import ConnectionPool

CONTROLLERS = Path(__file__).resolve().parents[1] / "examples" / "controllers"
EVENT = {"event": "sip-routing", "version": "1.0", "id": "1234:5", "tindex": 1234, "tlabel": 5,
         "method": "INVITE", "ruri": "sip:+4930123@127.0.0.1:5060", "caller": "alice",
         "callee": "+4930123", "from": "sip:alice@127.0.0.1", "to": "sip:+4930123@127.0.0.1",
         "call_id": "1-4242@127.0.0.1", "source_address": "127.0.0.1", "source_port": 5061,
         "transport": "udp", "headers": {}}


class _Counter:
    value = 0


class _Stats:
    def counter(self, group: str, name: str) -> _Counter:
        return _Counter()


class _Router:
    """What HttpClientApi needs of the router: counters."""

    stats = _Stats()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(client: str, url: str, queries: int, in_flight: int,
                  controller_pid: int) -> str:
    config = HttpClientConfig()
    pool = ConnectionPool(max_connections=config.max_connections,
                          max_keepalive=config.max_keepalive,
                          keepalive_expiry=config.keepalive_expiry, verify_tls=True)
    api = HttpClientApi(pool, config, _Router())  # type: ignore[arg-type]
    other = httpx.AsyncClient(limits=httpx.Limits(max_connections=config.max_connections))

    async def query() -> Any:
        if client == "httpx":
            return (await other.post(url, json=EVENT, timeout=config.timeout)).json()
        return (await api.query(url, "POST", EVENT)).json()

    await query()  # connect outside the measurement

    async def ask(count: int) -> None:
        for _ in range(count):
            answer = await query()
            assert "routes" in answer or "reply" in answer

    controller_before = cpu_seconds(controller_pid)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(in_flight):
            nursery.start_soon(ask, queries // in_flight)
    done = in_flight * (queries // in_flight)
    cpu = (time.process_time() - cpu_before) / done * 1e6
    wall = (time.perf_counter() - wall_before) / done * 1e6
    controller = (cpu_seconds(controller_pid) - controller_before) / done * 1e6
    pool.close()
    await other.aclose()
    return f"| {client} | {in_flight} | {cpu:.0f} | {controller:.0f} | {wall:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=4000)
    args = parser.parse_args()
    controller = subprocess.Popen(
        [sys.executable, "http_controller.py", "--port", "0", "--table", "table.json"],
        cwd=CONTROLLERS, stdout=subprocess.PIPE)
    try:
        assert controller.stdout is not None
        url = controller.stdout.readline().decode().split()[-1]
        print("| client | in flight | client CPU µs/query | controller CPU µs/query | "
              "wall µs/query |")
        print("|---|---:|---:|---:|---:|")
        for client in ("kamrouter", "httpx"):
            for in_flight in (1, 4, 16):
                print(trio.run(measure, client, url, args.queries, in_flight, controller.pid))
    finally:
        controller.kill()
        controller.wait()


if __name__ == "__main__":
    main()
