#!/usr/bin/env python3
"""What two nodes sharing one Redis cost Redis: commands, round trips and pub/sub messages
per authenticated REGISTER, per call and per htable write.

The shipped two-node example (etc/nodes/: node A on 127.0.0.2, node B on 127.0.0.3, each a
registrar behind the shared ban list) runs against a real redis-server on a free port
(in memory). Phases, each counted from Redis's INFO before and after:

- ``--registers`` authenticated REGISTERs of one phone through node A (sipp, REGISTER ->
  401 -> REGISTER -> 200, each refreshing the binding);
- ``--calls`` calls through node B to a phone registered through node A (sipp caller with
  digest auth -> node B -> sipp callee: INVITE/407/ACK/INVITE/200/ACK/BYE/200);
- ``--writes`` ``htable.sets`` through node A's control socket.

Round trips are Redis's ``total_reads_processed`` (one per batch a client sends; a node
pipelines what is queued), commands its ``total_commands_processed`` (the commands run by
the Lua scripts included), messages and bytes what a subscriber of every channel receives
(a node receives the same); CPU per operation of node A, node B and Redis (on a machine
shared with sipp, as in every benchmark here).

    .venv/bin/python benchmarks/nodes.py [--registers 2000] [--calls 500] [--writes 1000]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import kamcli.main  # noqa: F401 - before tests/ is on the path: tests/kamcli is no kamcli

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the e2e harness: tests/support, the registrar's

from cps import process_tree_cpu  # noqa: E402
from registrar.conftest import ETC, RegistrarRouter, add_users  # noqa: E402
from support.ports import LOOPBACK, free_port  # noqa: E402
from support.redis import RedisServer  # noqa: E402
from support.sipp import Sipp  # noqa: E402

SIPP = ETC / "sipp"
REGISTER_SCENARIO = REPO / "benchmarks" / "sipp" / "register_auth.xml"
SETTLE = 1.0  # seconds after a phase before Redis is asked again
IDLE = 5.0  # seconds of the idle phase


class Subscriber:
    """A raw RESP client subscribed to every channel, counting what it is sent."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=5)
        self.sock.sendall(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n")
        self.received = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.sock.settimeout(None)
        while chunk := self.sock.recv(1 << 16):
            self.received += chunk

    @property
    def messages(self) -> int:
        return self.received.count(b"\r\n$8\r\npmessage\r\n")

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


@dataclass
class Counts:
    commands: int
    reads: int
    messages: int
    received: int
    cpu: tuple[float, ...]  # seconds: node A, node B, Redis

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.commands - other.commands, self.reads - other.reads,
                      self.messages - other.messages, self.received - other.received,
                      tuple(x - y for x, y in zip(self.cpu, other.cpu)))


@dataclass
class Setup:
    redis: RedisServer
    subscriber: Subscriber
    pids: tuple[int, ...]  # node A, node B, Redis
    #: CPU seconds per second of each while idle (timers, Redis's cron), taken off the
    #: operations' figures
    idle: tuple[float, ...] = (0.0, 0.0, 0.0)

    def counts(self) -> Counts:
        stats = self.redis.info("stats")  # INFO itself is one command and one read
        return Counts(int(stats["total_commands_processed"]),
                      int(stats["total_reads_processed"]), self.subscriber.messages,
                      len(self.subscriber.received),
                      tuple(process_tree_cpu(pid) for pid in self.pids))

    def measure_idle(self, seconds: float) -> None:
        before = self.counts()
        time.sleep(seconds)
        self.idle = tuple(cpu / seconds for cpu in (self.counts() - before).cpu)
        print(f"  {'idle, CPU µs per second':<33} {'':27} "
              + " ".join(f"{cpu * 1e6:7.0f}" for cpu in self.idle), flush=True)

    def measured(self, label: str, operations: int, run: Callable[[], None]) -> None:
        before, start = self.counts(), time.monotonic()
        run()
        time.sleep(SETTLE)  # the last changes reach Redis within a round trip or so
        delta, elapsed = self.counts() - before, time.monotonic() - start
        a, b, redis = (max(0.0, cpu - idle * elapsed) / operations * 1e6
                       for cpu, idle in zip(delta.cpu, self.idle))
        print(f"  {label:<27} {operations:>5} {delta.commands / operations:6.2f} "
              f"{delta.reads / operations:6.2f} {delta.messages / operations:6.2f} "
              f"{delta.received / max(1, delta.messages):6.0f} {a:7.0f} {b:7.0f} {redis:7.0f}",
              flush=True)


def sipp_ok(sipp: Sipp) -> None:
    result = sipp.start().wait()
    if not result.ok:
        raise SystemExit(f"{sipp.name}: {result.report()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--registers", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=500, help="REGISTERs and calls per second")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kamrouter-nodes-") as tmp:
        work = Path(tmp)
        redis = RedisServer(work / "redis", persist=False).start()
        shared = {"redis_url": redis.url, "auth": {"db_file": str(work / "subscriber.sqlite")}}
        a = RegistrarRouter(work / "a", ETC / "nodes/node-a.toml", "127.0.0.2", **shared)
        b = RegistrarRouter(work / "b", ETC / "nodes/node-b.toml", "127.0.0.3", **shared)
        subscriber = Subscriber(redis.port)
        try:
            a.start()
            add_users(a, ("alice", "alicesecret"), ("bob", "bobsecret"))
            b.start()
            assert redis.process is not None
            setup = Setup(redis, subscriber, (a.process.pid, b.process.pid, redis.process.pid))
            print(f"Redis per operation, two nodes (etc/nodes), load average "
                  f"{os.getloadavg()[0]:.2f}:\n  {'':27} {'ops':>5} {'cmds':>6} {'trips':>6} "
                  f"{'msgs':>6} {'B/msg':>6} {'A µs':>7} {'B µs':>7} {'Redis':>7}")
            setup.measure_idle(IDLE)
            callee = free_port()
            registers = Sipp("register", str(REGISTER_SCENARIO), work, port=callee,
                             remote=a.address, calls=args.registers, rate=args.rate,
                             timeout_s=args.registers / args.rate + 30,
                             extra_args=("-s", "bob", "-ap", "bobsecret"))
            setup.measured("REGISTER through node A", args.registers,
                           lambda: sipp_ok(registers))
            uas = Sipp("bob", str(REPO / "tests/scenarios/uas.xml"), work, port=callee,
                       calls=args.calls, timeout_s=args.calls / args.rate + 30).start()
            uas.wait_listening()
            caller = Sipp("alice", str(SIPP / "caller.xml"), work, port=free_port(),
                          remote=b.address, calls=args.calls, rate=args.rate,
                          timeout_s=args.calls / args.rate + 30,
                          extra_args=("-s", "alice", "-au", "alice", "-ap", "alicesecret",
                                      "-key", "callee", "bob"))
            try:
                setup.measured("call through node B", args.calls, lambda: sipp_ok(caller))
            finally:
                uas.kill()

            def writes() -> None:
                for i in range(args.writes):
                    a.kamcli_ok("htable", "sets", "bans", f"192.0.2.{i % 250}", "x")

            setup.measured("htable.sets through node A", args.writes, writes)
            print(f"  Redis clients: {redis.info('clients')['connected_clients']} "
                  f"(each node's connections and this counter)")
        finally:
            subscriber.close()
            a.stop()
            b.stop()
            redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
