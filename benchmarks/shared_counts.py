"""What sharing dispatcher's call load (algorithm 10) and pike's request counts between
worker processes costs, in process (kamrouter/modules/dispatcher/load_bus.py,
kamrouter/modules/pike/bus_link.py): the work of the sender (selection and bookkeeping,
plus encoding and queueing the bus messages) beside the same work without a bus, and the
receiver's (decoding and applying the datagrams). The datagrams' system calls and
wake-ups are not in it: `benchmarks/state_bus.py` measures those, `benchmarks/cps.py
--routing dispatcher-4,dispatcher-10 --workers 1,2` the whole of it in a router.

    .venv/bin/python benchmarks/shared_counts.py [--calls 5000] [--requests 50000]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the in-process bus pair and the dispatcher bench

from dispatcher.bench import Bench, make_msg  # noqa: E402
from support.bus import BusWorker  # noqa: E402
from support.doubles import FakeClock  # noqa: E402

from kamrouter.modules.dispatcher.bus_link import DispatcherBus  # noqa: E402
from kamrouter.modules.dispatcher.load_bus import CallLoadBus  # noqa: E402
from kamrouter.modules.pike.bus_link import PikeBus  # noqa: E402
from kamrouter.modules.pike.table import PikeTable  # noqa: E402
from kamrouter.timers import Scheduler  # noqa: E402

LIST = "".join(f"1 sip:127.0.0.1:{5080 + n}\n" for n in range(8))


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def delivery(sender: BusWorker, receiver: BusWorker) -> Callable[[], None]:
    """Hands the receiver the datagrams of what queued."""
    (peer,) = sender.bus.peers
    datagrams = []
    while peer.queue:
        datagram, count = sender.bus._pack(peer)
        for _ in range(count):
            peer.queue.popleft()
        datagrams.append(datagram)
    return lambda: [receiver.bus.receive(d) for d in datagrams] and None


class DispatcherWorker(BusWorker):
    def __init__(self, index: int, run_dir: Path, shared: bool) -> None:
        super().__init__(index, run_dir)
        self.bench = Bench(LIST)
        if shared:
            DispatcherBus(self.bus, self.bench.ds)
            self.load = CallLoadBus(self.bus, self.bench.ds, self.bench.scheduler)


def calls(worker: DispatcherWorker, count: int, tag: str) -> Callable[[], None]:
    """Selection, 2xx and BYE of ``count`` calls."""
    invites = [make_msg(call_id=f"{tag}{n}@bench") for n in range(count)]
    byes = [make_msg("BYE", call_id=f"{tag}{n}@bench") for n in range(count)]
    api, ds = worker.bench.api, worker.bench.ds

    def run() -> None:
        for invite, bye in zip(invites, byes):
            api.select_dst(invite, 1, 10)
            ds.calls.confirm(invite.call_id, 0.0)
            api.load_update(bye)
    return run


def dispatcher(run_dir: Path, count: int) -> None:
    alone = DispatcherWorker(0, run_dir, shared=False)
    sender, receiver = (DispatcherWorker(i, run_dir, shared=True) for i in (0, 1))
    calls(alone, 500, "w")()  # warm-up
    # Taking turns, the best of three each: the machine's other load touches both alike.
    turns = [(timed(calls(alone, count, f"a{n}-")), timed(calls(sender, count, f"s{n}-")))
             for n in range(3)]
    base, shared = (min(times) for times in zip(*turns))
    per = 1e6 / count
    print(f"dispatcher, algorithm 10, {count} calls (selection, 2xx, BYE) over 8 targets:")
    print(f"  sender: {base * per:.1f} µs per call without a bus, {shared * per:.1f} µs with "
          f"({(shared - base) * per:+.1f} µs: 3 changes)")
    sender.load.flush()
    applied = timed(delivery(sender, receiver)) / len(turns)
    print(f"  receiver: {applied * per:.1f} µs per call")
    assert sum(d.health.load for d in receiver.bench.ds.list.destinations()) == 0


class PikeWorker(BusWorker):
    def __init__(self, index: int, run_dir: Path, clock: FakeClock, shared: bool) -> None:
        super().__init__(index, run_dir)
        self.pike = PikeTable(2, 1_000_000, 120, 300, 65536, clock)
        self.link = PikeBus(self.bus, self.pike, Scheduler(clock)) if shared else None


def pike(run_dir: Path, count: int) -> None:
    clock = FakeClock(1000.0)
    alone = PikeWorker(0, run_dir, clock, shared=False)
    sender, receiver = (PikeWorker(i, run_dir, clock, shared=True) for i in (0, 1))
    for sources in (10, 1000):
        ips = [f"10.0.{n // 250}.{n % 250}" for n in range(sources)] * (count // sources)

        def requests(table: PikeTable, ips: list[str] = ips) -> Callable[[], None]:
            return lambda: [table.check(ip) for ip in ips] and None
        requests(alone.pike)()  # warm-up
        assert sender.link is not None
        sender.link.flush()
        sender.bus.peers[0].queue.clear()
        turns = [(timed(requests(alone.pike)), timed(requests(sender.pike))) for _ in range(3)]
        base, shared = (min(times) for times in zip(*turns))
        flushed = timed(sender.link.flush)  # one interval's counts of every source
        applied = timed(delivery(sender, receiver))
        per = 1e6 / len(ips)
        print(f"pike, {len(ips)} requests from {sources} sources in one flush interval:")
        print(f"  per request: {base * per:.2f} µs without a bus, {shared * per:.2f} µs "
              f"with ({(shared - base) * per:+.2f} µs)")
        print(f"  per interval: flush {flushed * 1e6:.0f} µs, receiver {applied * 1e6:.0f} µs "
              f"({applied * 1e6 / sources:.1f} µs per source)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=50000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shared-counts-") as run_dir:
        dispatcher(Path(run_dir), args.calls)
        pike(Path(run_dir), args.requests)


if __name__ == "__main__":
    main()
