"""mtree with many prefixes: load time, memory, longest-prefix matches per second.

    .venv/bin/python benchmarks/mtree.py                     # 1,000,000 prefixes
    .venv/bin/python benchmarks/mtree.py --prefixes 100000 --tracemalloc

Writes a CSV of random digit prefixes (4-12 digits, 50 distinct next hops, as a carrier
table would have) to a temporary file, loads it as the module does (``load_file``), then
matches random 11-digit numbers (mode 0 and mode 2). Memory is the process's RSS growth
over the load (and, with --tracemalloc, Python's own count of what the tree holds; it slows
the load down several times). ``--compare-trie`` also builds the obvious alternative, a
trie with a dict per node, from the same prefixes and reports its memory. Runs in-process:
nothing is sent anywhere.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import tempfile
import time
from pathlib import Path

from kamrouter.modules.mtree.files import load_file
from kamrouter.modules.mtree.tree import PrefixTree


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def write_table(path: Path, count: int, rng: random.Random) -> None:
    hops = [f"10.0.{i // 250}.{i % 250 + 1}:5060" for i in range(50)]
    seen: set[str] = set()
    with open(path, "w") as f:
        f.write("prefix,value\n")
        while len(seen) < count:
            prefix = str(rng.randrange(10 ** 3, 10 ** 12))[: rng.randint(4, 12)]
            if prefix not in seen:
                seen.add(prefix)
                f.write(f"{prefix},{rng.choice(hops)}\n")


def dict_trie_bytes(tree: PrefixTree) -> int:
    """RSS growth of a dict-per-node trie holding the same prefixes and values."""
    gc.collect()
    before = rss_bytes()
    root: dict = {}
    for prefix, value in tree.items.items():
        node = root
        for ch in prefix:
            node = node.setdefault(ch, {})
        node[None] = value
    gc.collect()
    grown = rss_bytes() - before
    del root
    return grown


def best_rate(func, keys: list[str], repeat: int = 5) -> float:
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        for key in keys:
            func(key)
        best = max(best, len(keys) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=1_000_000)
    parser.add_argument("--matches", type=int, default=200_000, help="keys per timing run")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--compare-trie", action="store_true",
                        help="also measure a dict-per-node trie of the same prefixes")
    args = parser.parse_args()
    rng = random.Random(16)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prefixes.csv"
        write_table(path, args.prefixes, rng)
        gc.collect()
        if args.tracemalloc:
            import tracemalloc

            tracemalloc.start()
        before = rss_bytes()
        start = time.perf_counter()
        tree = load_file(PrefixTree("bench"), path)
        load_s = time.perf_counter() - start
        gc.collect()
        grown = rss_bytes() - before
        traced = None
        if args.tracemalloc:
            import tracemalloc

            traced = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
    keys = [str(rng.randrange(10 ** 10, 10 ** 11)) for _ in range(args.matches)]
    hits = sum(tree.longest(key) is not None for key in keys)
    mode0 = best_rate(tree.longest, keys)
    mode2 = best_rate(tree.all, keys)
    print(f"prefixes            {len(tree.items):,} (lengths {min(tree._lengths)}-"
          f"{max(tree._lengths)}), file {path.name}")
    print(f"load                {load_s:.2f} s ({len(tree.items) / load_s:,.0f} prefixes/s)")
    print(f"memory              RSS +{grown / 2**20:.0f} MiB ({grown / len(tree.items):.0f} "
          f"bytes/prefix); tree.memsize {tree.memsize / 2**20:.0f} MiB"
          + (f"; tracemalloc {traced / 2**20:.0f} MiB" if traced is not None else ""))
    print(f"match, mode 0       {mode0:,.0f}/s ({1e6 / mode0:.2f} us each, {hits / len(keys):.0%} hit)")
    print(f"match, mode 2       {mode2:,.0f}/s ({1e6 / mode2:.2f} us each)")
    if args.compare_trie:
        trie = dict_trie_bytes(tree)
        print(f"dict-per-node trie  RSS +{trie / 2**20:.0f} MiB ({trie / len(tree.items):.0f} "
              "bytes/prefix)")


if __name__ == "__main__":
    main()
