"""All-byte mutation fuzzing of the control-plane decoders (JSON-RPC framing, dispatch, the
stream/HTTP/FIFO request handling, evapi netstrings and messages): a fixed seed and a
bounded number of cases, zero uncaught exceptions and nothing for the last-resort guard.

``benchmarks/fuzz_control.py --seconds 60`` runs the same targets for longer.
"""
from __future__ import annotations

import pytest

from support.controlfuzz import Harness, cases

SEED = 20261203
CASES = 300


@pytest.mark.parametrize("target", ["splitter", "dispatch", "stream", "http", "fifo",
                                    "netstring", "evapi", "evapi_link"])
async def test_mutated_inputs_never_escape(target: str) -> None:
    harness = Harness()
    run = harness.targets()[target]
    next_case = cases(SEED)
    for number in range(CASES):
        data = next_case()
        try:
            await run(data)
        except BaseException as exc:
            raise AssertionError(f"case {number} ({data[:200]!r}...) raised {exc!r}") from exc
