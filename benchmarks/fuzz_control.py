"""All-byte mutation fuzzing of the control-plane decoders, for longer than ``make test``.

The targets of ``tests/support/controlfuzz.py`` (JSON-RPC splitter, dispatcher, stream and
HTTP connections, FIFO documents, evapi netstrings and messages, the frames of evapi's link
between workers), round robin, each case a fresh mutation; prints cases per second per
target and every case that escaped.

Run: .venv/bin/python benchmarks/fuzz_control.py --seconds 60 [--seed N]

Against a running router instead (its stream socket, and evapi on a loopback address)::

    .venv/bin/python benchmarks/fuzz_control.py --seconds 60 \
        --socket $XDG_RUNTIME_DIR/kamrouter/kamrouter_rpc.sock --evapi 127.0.0.1:8448

sends the mutated documents over the socket and as evapi netstrings, then checks that the
router still answers ``core.version``.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import trio  # noqa: E402

from kamrouter.modules.evapi.framing import encode_netstring  # noqa: E402
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


def fuzz_router(seconds: float, seed: int, path: str, evapi: tuple[str, int] | None) -> int:
    """Mutated documents to a running router; 1 if it stopped answering."""
    next_case = cases(seed)
    sent = 0
    deadline = time.monotonic() + seconds
    controller = _evapi(evapi) if evapi else None
    while time.monotonic() < deadline:
        data = next_case()
        with _unix(path) as rpc:  # one connection per case: the reply, then end of file
            rpc.settimeout(10)
            try:
                rpc.sendall(data)
                rpc.shutdown(socket.SHUT_WR)
                while rpc.recv(65536):
                    pass
            except OSError:  # e.g. closed by the router after an oversized request
                pass
        if controller is not None:
            try:
                controller.sendall(encode_netstring(data))
                _drain(controller)
            except OSError:  # a framing error closes the connection, as designed
                controller.close()
                controller = _evapi(evapi)  # type: ignore[arg-type]
        sent += 1
    probe = _unix(path)
    probe.settimeout(10)
    probe.sendall(b'{"jsonrpc":"2.0","method":"core.version","id":1}\n')
    alive = b"kamrouter" in probe.recv(65536)
    print(f"{sent} cases in {seconds:g} s ({sent / seconds:.0f}/s) to {path}"
          f"{' and evapi' if evapi else ''}; router {'alive' if alive else 'NOT ANSWERING'}")
    return 0 if alive else 1


def _unix(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


def _evapi(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return
    raise ConnectionResetError("closed")


def _loopback(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not ipaddress.ip_address(host.strip("[]")).is_loopback:
        raise argparse.ArgumentTypeError("fuzzing goes to loopback addresses only")
    return host.strip("[]"), int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--socket", help="a running router's RPC stream socket")
    parser.add_argument("--evapi", type=_loopback, help="its evapi address (loopback)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # refusals are logged; the counts are what matter here
    print(f"seed {args.seed}")
    if args.socket:
        sys.exit(fuzz_router(args.seconds, args.seed, args.socket, args.evapi))
    sys.exit(1 if trio.run(fuzz, args.seconds, args.seed) else 0)


if __name__ == "__main__":
    main()
