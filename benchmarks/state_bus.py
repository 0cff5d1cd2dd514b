"""Cost and delay of the state bus between worker processes (kamrouter/modules/bus.py).

Two processes, each a StateBus with one htable shared through it, on Unix datagram
sockets in a temporary run directory (no router around them, so what is measured is the
bus): the writer sets keys to the time of the write (``time.monotonic_ns``, one clock for
the whole machine), the reader notes how long after its write each one was applied.

- paced: ``--writes`` writes, one every ``--interval`` ms: the delay of a lone write;
- burst: ``--writes`` writes back to back (a yield every 100): batching, and CPU per write.

CPU per write is the writer's process CPU time with the bus, beside the same loop writing
to a table without it; the reader's CPU time per applied write is printed too.

    .venv/bin/python benchmarks/state_bus.py [--writes 5000] [--interval 1]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import trio

from kamrouter.modules.bus import StateBus
from kamrouter.modules.htable.bus_link import HtableBus
from kamrouter.modules.htable.config import TableConfig
from kamrouter.modules.htable.table import Table
from kamrouter.rpc.registry import RpcError
from kamrouter.stats import StatsRegistry


async def _nobody(index: int, method: str, params: list[Any]) -> Any:
    raise RpcError(-32000, "no dump in a benchmark")


def shared_table(index: int, run_dir: str) -> tuple[StateBus, Table]:
    bus = StateBus(index, 2, run_dir, StatsRegistry(), _nobody)
    table = Table(TableConfig(name="t"), time.monotonic)
    HtableBus(bus, {"t": table})
    return bus, table


async def reader(run_dir: str) -> None:
    """Apply what comes; at the key "done", print the delays and CPU time as JSON."""
    bus, table = shared_table(1, run_dir)
    delays: list[int] = []
    apply = bus.channels["htable"].apply
    cpu = time.process_time()
    done = trio.Event()

    def finish(payload: Any) -> None:
        apply(payload)
        if payload.get("k") == "done":
            done.set()
            return
        delays.append(time.monotonic_ns() - int(payload["v"]))
    bus.channels["htable"].apply = finish  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        print("ready", flush=True)
        await done.wait()
        nursery.cancel_scope.cancel()
    print(json.dumps({"delays": delays, "cpu": time.process_time() - cpu,
                      "received": bus.received.value}), flush=True)


async def write(table: Table, writes: int, interval: float) -> float:
    """The CPU time of ``writes`` writes to ``table`` (paced or in bursts of 100)."""
    cpu = time.process_time()
    for n in range(writes):
        table.set(f"k{n % 1000}", time.monotonic_ns())
        if interval:
            await trio.sleep(interval)
        elif n % 100 == 99:
            await trio.sleep(0)
    return time.process_time() - cpu


async def writer(run_dir: str, writes: int, interval: float) -> dict[str, Any]:
    baseline = await write(Table(TableConfig(name="t"), time.monotonic), writes, interval)
    bus, table = shared_table(0, run_dir)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        cpu = time.process_time()
        await write(table, writes, interval)
        while bus.peers[0].queue:
            await trio.sleep(0)
        spent = time.process_time() - cpu
        table.set("done", 0)
        while bus.peers[0].queue:
            await trio.sleep(0.001)
        nursery.cancel_scope.cancel()
    return {"cpu": spent, "baseline": baseline, "datagrams": bus.datagrams.value,
            "sent": bus.sent.value - 1}


def run(mode: str, writes: int, interval: float) -> None:
    with tempfile.TemporaryDirectory(prefix="state-bus-") as run_dir:
        child = subprocess.Popen([sys.executable, __file__, "--reader", run_dir],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        wrote = trio.run(writer, run_dir, writes, interval)
        read = json.loads(child.stdout.readline())
        child.wait(timeout=30)
    delays = sorted(read["delays"])
    us = [d / 1000 for d in delays]
    quantiles = statistics.quantiles(us, n=100)
    print(f"{mode}: {writes} writes, {read['received']} applied by the other process, "
          f"{wrote['datagrams']} datagrams ({wrote['sent'] / max(1, wrote['datagrams']):.1f} "
          f"writes each)")
    print(f"  visible after: p50 {quantiles[49]:.0f} µs, p99 {quantiles[98]:.0f} µs, "
          f"max {us[-1]:.0f} µs")
    print(f"  writer CPU per write: {wrote['cpu'] / writes * 1e6:.1f} µs with the bus, "
          f"{wrote['baseline'] / writes * 1e6:.1f} µs without (the same loop, no bus)")
    print(f"  reader CPU per applied write: {read['cpu'] / max(1, read['received']) * 1e6:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=1.0, help="ms between paced writes")
    parser.add_argument("--reader", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:
        trio.run(reader, args.reader)
        return
    run("paced", min(args.writes, 2000), args.interval / 1000)
    run("burst", args.writes, 0)


if __name__ == "__main__":
    main()
