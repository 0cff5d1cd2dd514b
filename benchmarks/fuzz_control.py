"""All-byte mutation fuzzing of the control-plane decoders, for longer than ``make test``.

The targets of ``tests/support/controlfuzz.py`` (JSON-RPC splitter, dispatcher, stream and
HTTP connections, FIFO documents, evapi netstrings and messages), round robin, each case a
fresh mutation; prints cases per second per target and every case that escaped.

Run: .venv/bin/python benchmarks/fuzz_control.py --seconds 60 [--seed N]
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import trio  # noqa: E402

from support.controlfuzz import Harness, cases  # noqa: E402


async def fuzz(seconds: float, seed: int) -> int:
    harness = Harness()
    next_case = cases(seed)
    targets = harness.targets()
    counts = dict.fromkeys(targets, 0)
    spent = dict.fromkeys(targets, 0.0)
    found = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, run in targets.items():
            data = next_case()
            started = time.perf_counter()
            try:
                await run(data)
            except BaseException as exc:  # noqa: BLE001 - report and go on
                found += 1
                print(f"{name}: {exc!r} on {data[:300]!r}")
                harness = Harness()
                targets = harness.targets()
            spent[name] += time.perf_counter() - started
            counts[name] += 1
    for name in counts:
        print(f"{name:10} {counts[name]:8} cases  {counts[name] / max(spent[name], 1e-9):10.0f}/s")
    print(f"total      {sum(counts.values()):8} cases in {seconds:g} s, {found} escaped")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # refusals are logged; the counts are what matter here
    print(f"seed {args.seed}")
    sys.exit(1 if trio.run(fuzz, args.seconds, args.seed) else 0)


if __name__ == "__main__":
    main()
