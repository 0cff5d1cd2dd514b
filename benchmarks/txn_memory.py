"""Memory per transaction, in process: what one call costs the router while it is set up and
after it ended, measured with tracemalloc through the same router as ``benchmarks/pipeline.py``.

Three states are measured, each over ``--calls`` calls held at once:

* **live** — an INVITE relayed and answered 100 by the router, the callee silent (a call
  ringing: the server and client INVITE transactions with their timers);
* **completed** — an INVITE answered 486 by the callee and relayed back, before the caller's
  ACK (the server transaction keeps the final reply to retransmit until the ACK or timer H);
* **finished** — a whole call (INVITE/180/200/ACK/BYE/200), whose transactions wait out their
  retransmission-absorbing states (timer K/J, RFC 6026 Accepted).

    .venv/bin/python benchmarks/txn_memory.py [--calls N] [--top K]
"""
from __future__ import annotations

import argparse
import gc
import tracemalloc
from collections.abc import Callable

from pipeline import CALLEE, CALLER, Wire, answer, build_router, invite, one_call

from kamrouter.core.router import Router
from kamrouter.net import Endpoint


def ringing(router: Router, wire: Wire, proxy: Endpoint, n: int) -> None:
    router.proxy.on_message(invite(n, proxy), CALLER, proxy)
    wire.sent.clear()


def rejected(router: Router, wire: Wire, proxy: Endpoint, n: int) -> None:
    router.proxy.on_message(invite(n, proxy), CALLER, proxy)
    router.proxy.on_message(answer(wire.last_to(CALLEE), 486, n), CALLEE, proxy)
    wire.sent.clear()


def whole_call(router: Router, wire: Wire, proxy: Endpoint, n: int) -> None:
    one_call(router, wire, proxy, n)


def bytes_per_call(step: Callable[[Router, Wire, Endpoint, int], None], calls: int,
                   top: int) -> tuple[float, int]:
    """Bytes allocated and still held per call after ``calls`` steps; transactions held."""
    router, wire, proxy = build_router()
    step(router, wire, proxy, 0)  # warm up caches and imports
    gc.collect()
    tracemalloc.start(8 if top else 1)
    before = tracemalloc.take_snapshot()
    for n in range(1, calls + 1):
        step(router, wire, proxy, n)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    for stat in after.compare_to(before, "lineno")[:top]:
        print(f"  {stat.size_diff / calls:8.0f} B/call  {stat.traceback[0]}")
    return held / calls, len(router.tm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=0, help="print the K biggest lines")
    args = parser.parse_args()
    print(f"| state ({args.calls:,} calls held) | transactions | bytes per call | per transaction |")
    print("|---|---:|---:|---:|")
    for name, step in (("live (ringing)", ringing), ("completed (486, before ACK)", rejected),
                       ("finished (whole call, wait states)", whole_call)):
        per_call, transactions = bytes_per_call(step, args.calls, args.top)
        per_txn = per_call * args.calls / max(transactions, 1)
        print(f"| {name} | {transactions:,} | {per_call:,.0f} | {per_txn:,.0f} |")


if __name__ == "__main__":
    main()
