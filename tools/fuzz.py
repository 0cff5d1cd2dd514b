#!/usr/bin/env python3
"""All-byte fuzzing of a running kamrouter over UDP, TCP, WebSocket, the JSON-RPC stream
socket and the evapi port, for as long as asked; then: is it alive, does it route a sipp
call?

    .venv/bin/python tools/fuzz.py [--duration 60] [--seed 1] [--workdir DIR]

It starts the router itself (this worktree's ``kamrouter``, on free 127.0.0.1 ports) with a
config made for fuzzing: DNS off, a routing script that sends every request to a loopback
sink (a UDP socket of this tool, whatever the Request-URI, Route or Via says) and drops
replies whose next Via is not a loopback address; evapi on; log level warning. Messages
are mutated with every byte value (tests/support/fuzzing.py, the engine of the in-process
fuzz test). JSON-RPC documents that still parse are sent only if they call read-only
methods, so the fuzzer cannot stop or reconfigure the router by luck.

It prints cases per second per channel and what it found: the router exiting, tracebacks
in its log, non-zero ``core:drops_internal_error_*`` counters, failed health probes, and
whether a sipp call through the router succeeds at the end. Exit status 0 when nothing was
found, 1 otherwise. Traffic goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import json
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.fuzzing import (EVAPI_SEEDS, RPC_SEEDS, Mutator, numbered,  # noqa: E402
                             sip_seeds, ws_frame, ws_upgrade)
from support.ports import LOOPBACK, free_port  # noqa: E402
from support.proxy import ProxyProcess, kamrouter_proxy  # noqa: E402
from support.sipp import Sipp  # noqa: E402

FUZZ_SCRIPT = '''
"""Fuzzing: every request goes to the loopback sink; replies only back to loopback."""
import ipaddress

from kamrouter.script import core, maxfwd, sanity, sl, tm

SINK = "sip:127.0.0.1:{sink}"
#: The final sipp call goes to the sipp UAS on another loopback port, away from what is
#: left of the fuzzing traffic (retransmissions to the sink go on for a while).
FINAL_PORT = {final}


def request_route(msg):
    if not maxfwd.process(msg, 10):
        sl.send_reply(msg, 483, "Too Many Hops")
        return
    if not sanity.check(msg):
        return
    if msg.method == "OPTIONS" and core.is_myself(msg.ruri):
        sl.send_reply(msg, 200, "OK")  # the fuzzer's health probe
        return
    final = getattr(msg.sip.uri, "port", None) == FINAL_PORT
    msg.dst_uri = f"sip:127.0.0.1:{FINAL_PORT}" if final else SINK  # whatever R-URI/Route say
    tm.relay(msg)


def reply_route(msg):
    try:
        nxt = msg.sip.vias[1]
        return ipaddress.ip_address((nxt.received or nxt.host).strip("[]")).is_loopback
    except Exception:
        return False
'''

#: Methods a fuzzed JSON-RPC document may call (read-only ones).
SAFE_METHODS = {"core.version", "core.uptime", "core.echo", "stats.get_statistics",
                "system.listMethods", "x"}
CHANNEL_WEIGHTS = {"udp": 40, "tcp": 20, "ws": 10, "rpc": 15, "evapi": 15}
PROBE_EVERY = 5.0
TCP_CASES_PER_CONNECTION = 10


class Channels:
    """The fuzzer's sockets toward the router; reconnects what the router closed."""

    def __init__(self, router: ProxyProcess, evapi_port: int, ws_port: int,
                 mutate: Mutator) -> None:
        self.router = router
        self.evapi_port = evapi_port
        self.ws_port = ws_port
        self.mutate = mutate
        self.ws: socket.socket | None = None
        self.ws_cases = 0
        self.rpc_path = str(router.workdir / "run" / "kamrouter_rpc.sock")
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((LOOPBACK, 0))
        self.udp.setblocking(False)
        self.tcp: socket.socket | None = None
        self.tcp_cases = 0
        self.evapi: socket.socket | None = None
        self.reconnects = Counter[str]()

    @property
    def udp_port(self) -> int:
        return self.udp.getsockname()[1]

    def send_udp(self, data: bytes) -> None:
        try:
            self.udp.sendto(data[:65000], (LOOPBACK, self.router.port))
        except (BlockingIOError, OSError):
            pass

    def _stream(self, name: str, port: int) -> socket.socket:
        sock = socket.create_connection((LOOPBACK, port), timeout=2)
        sock.setblocking(False)
        self.reconnects[name] += 1
        return sock

    def send_tcp(self, data: bytes) -> None:
        """A fresh connection every few cases: a mutated Content-Length must not turn all
        that follows into one body."""
        self.tcp_cases += 1
        if self.tcp is not None and self.tcp_cases % TCP_CASES_PER_CONNECTION == 0:
            self.tcp.close()
            self.tcp = None
        self.tcp = self._send_stream("tcp", self.tcp, self.router.port, data)

    def send_ws(self, data: bytes) -> None:
        """SIP ``data`` in a WebSocket frame (the frame mutated now and then) on a connection
        upgraded (by a request mutated now and then) every few cases."""
        self.ws_cases += 1
        rng = self.mutate.rng
        if self.ws is not None and self.ws_cases % TCP_CASES_PER_CONNECTION == 0:
            self.ws.close()
            self.ws = None
        if self.ws is None:
            upgrade = ws_upgrade(f"{LOOPBACK}:{self.ws_port}", "https://fuzz.example")
            self.ws = self._send_stream("ws", None, self.ws_port, self.mutate.case(upgrade)
                                        if rng.random() < 0.1 else upgrade)
        frame = ws_frame(data, rng, opcode=rng.choice((1, 1, 1, 2, 9)))
        self.ws = self._send_stream("ws", self.ws, self.ws_port, self.mutate.case(frame)
                                    if rng.random() < 0.1 else frame)

    def send_evapi(self, data: bytes) -> None:
        self.evapi = self._send_stream("evapi", self.evapi, self.evapi_port, data)

    def _send_stream(self, name: str, sock: socket.socket | None, port: int,
                     data: bytes) -> socket.socket | None:
        try:
            if sock is None:
                sock = self._stream(name, port)
            sock.send(data)
            return sock
        except (BlockingIOError, OSError):  # closed by the router, or its buffer is full
            if sock is not None:
                sock.close()
            return None

    def send_rpc(self, data: bytes) -> None:
        """One document per connection, write side shut: what arrives is the whole case."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(self.rpc_path)
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                sock.recv(65536)
        except OSError:
            pass

    def drain(self) -> None:
        """Read and drop what the router sent back, so no buffer fills up."""
        socks = [s for s in (self.udp, self.tcp, self.ws, self.evapi) if s is not None]
        readable, _, _ = select.select(socks, [], [], 0)
        for sock in readable:
            try:
                while sock.recv(65536):
                    if sock is not self.udp:
                        break
            except (BlockingIOError, OSError):
                pass

    def close(self) -> None:
        for sock in (self.udp, self.tcp, self.ws, self.evapi):
            if sock is not None:
                sock.close()


class Sink:
    """Where the router sends every request: a UDP socket that reads and forgets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, port))
        self.sock.setblocking(False)
        self.received = 0

    def drain(self) -> None:
        try:
            while self.sock.recv(65536):
                self.received += 1
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        self.sock.close()


def safe_rpc(data: bytes) -> bool:
    """A document that parses must call only read-only methods (batches included)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return True  # not JSON: exactly what the decoder must survive
    calls = doc if isinstance(doc, list) else [doc]
    methods = [call.get("method") for call in calls if isinstance(call, dict)]
    return all(not isinstance(method, str) or method in SAFE_METHODS for method in methods)


def probe(router_port: int, attempts: int = 3) -> bool:
    """A well-formed OPTIONS to the router itself gets its 200 within 5 s (retried: under
    the fuzzer's load the router may still be working through its socket buffer)."""
    return any(_probe_once(router_port) for _ in range(attempts))


def _probe_once(router_port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        branch = f"z9hG4bKprobe{time.monotonic_ns()}"
        sock.sendto((f"OPTIONS sip:{LOOPBACK}:{router_port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch={branch}\r\n"
                     f"From: <sip:probe@{LOOPBACK}>;tag=p\r\nTo: <sip:{LOOPBACK}>\r\n"
                     f"Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), (LOOPBACK, router_port))
        try:
            return sock.recv(65536).startswith(b"SIP/2.0 200")
        except OSError:
            return False


def router_stats(router: ProxyProcess) -> dict[str, int]:
    """The router's statistics (kamcli, over the stream socket); {} when it does not answer."""
    kamcli = Path(sys.executable).parent / "kamcli"
    result = subprocess.run([str(kamcli), "-s", str(router.workdir / "run" / "kamrouter_rpc.sock"),
                             "-o", "json", "stats", "all"], capture_output=True, text=True,
                            timeout=30)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def sipp_call(workdir: Path, router: ProxyProcess, uas_port: int) -> str | None:
    """None when one call through the router to a sipp UAS succeeds."""
    uas = Sipp("uas", "uas.xml", workdir, port=uas_port, timeout_s=20,
               trace_messages=True).start()
    uas.wait_listening()
    uac = Sipp("uac", "uac.xml", workdir, port=free_port(), remote=f"{LOOPBACK}:{uas_port}",
               outbound_proxy=router.address, timeout_s=20,
               trace_messages=True).start()
    results = [uac.wait(), uas.wait()]
    if all(result.complete for result in results):
        return None
    return "\n".join(result.report(2000) for result in results)


def fuzz(duration: float, seed: int, workdir: Path, channel_names: list[str]) -> int:
    sink_port, evapi_port, final_port = free_port(), free_port(), free_port()
    port, ws_port = free_port(), free_port()
    script = FUZZ_SCRIPT.replace("{sink}", str(sink_port)).replace("{final}", str(final_port))
    router = kamrouter_proxy(workdir / "router", port, script=script, sections={
        "core": {"dns": False, "log_level": "warning",
                 "listen": [f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}",
                            f"ws:{LOOPBACK}:{ws_port}"]},
        "evapi": {"bind_addr": f"{LOOPBACK}:{evapi_port}"}})
    router.start()
    sink = Sink(sink_port)
    mutate = Mutator(seed)
    channels = Channels(router, evapi_port, ws_port, mutate)
    rng = mutate.rng
    seeds = sip_seeds(channels.udp_port, router.address, f"{LOOPBACK}:{sink_port}")
    names = tuple(channel_names)
    weights = [CHANNEL_WEIGHTS[name] for name in names]
    cases = Counter[str]()
    findings: list[str] = []
    stats: dict[str, int] = {}
    started = time.monotonic()
    next_probe = started + PROBE_EVERY
    try:
        while (now := time.monotonic()) - started < duration:
            channel = rng.choices(names, weights)[0]
            if channel in ("udp", "tcp", "ws"):
                # mostly a new call; sometimes one seen before (retransmissions, dialogs)
                n = cases[channel] if rng.random() < 0.8 else rng.randrange(cases[channel] + 1)
                data = mutate.case(numbered(rng.choice(seeds), n), seeds)
                {"udp": channels.send_udp, "tcp": channels.send_tcp,
                 "ws": channels.send_ws}[channel](data)
            elif channel == "rpc":
                data = mutate.json_case(rng.choice(RPC_SEEDS))
                if not safe_rpc(data):
                    continue
                channels.send_rpc(data)
            else:
                channels.send_evapi(mutate.netstring_case(rng.choice(EVAPI_SEEDS)))
            cases[channel] += 1
            if cases.total() % 50 == 0:
                channels.drain()
                sink.drain()
            if now >= next_probe:
                next_probe = now + PROBE_EVERY
                if not router.running():
                    findings.append(f"router exited after {now - started:.0f} s "
                                    f"(last channel {channel}):\n{router.log_tail(4000)}")
                    break
                if not probe(router.port):
                    findings.append(f"health probe unanswered after {now - started:.0f} s")
        elapsed = time.monotonic() - started
        channels.close()
        sink.drain()
        sink.close()
        if router.running():
            if not probe(router.port):
                findings.append("health probe unanswered at the end")
            stats = router_stats(router)
            counters = {name: value for name, value in stats.items()
                        if name.startswith("core:drops_internal_error") and value}
            if not stats:
                findings.append("kamcli stats got no answer from the router")
            if counters:
                findings.append(f"internal errors caught by the guards: {counters}")
            failure = sipp_call(workdir / "sipp", router, final_port)
            call = "ok" if failure is None else "FAILED"
            if failure is not None:
                findings.append(f"sipp call through the router failed:\n{failure}")
        else:
            call = "not tried (router gone)"
            if not any("exited" in f for f in findings):
                findings.append(f"router exited:\n{router.log_tail(4000)}")
        log = router.log_path.read_text(errors="replace")
        if "Traceback" in log:
            findings.append(f"{log.count('Traceback')} traceback(s) in {router.log_path}")
    finally:
        router.stop()
    total = cases.total()
    print(f"fuzzed for {elapsed:.1f} s, seed {seed}: {total} cases, {total / elapsed:,.0f} "
          "cases/s")
    for name in names:
        print(f"  {name:6} {cases[name]:8} cases  {cases[name] / elapsed:8,.0f}/s"
              + (f"  ({channels.reconnects[name]} connections)"
                 if name in channels.reconnects else ""))
    handled = sum(stats.get(f"core:{name}", 0) for name in ("rcv_requests", "rcv_replies",
                                                              "bad_msg_hdr")) if stats else "?"
    print(f"  the router handled {handled} SIP messages (the kernel drops what a full socket "
          f"buffer cannot take); the sink received {sink.received} relayed requests")
    print(f"  sipp call through the router at the end: {call}")
    print(f"  router log: {router.log_path}")
    if findings:
        print(f"FINDINGS ({len(findings)}):")
        for finding in findings:
            print(f"- {finding}")
        return 1
    print("findings: none")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep router and sipp files here")
    parser.add_argument("--channels", default=",".join(CHANNEL_WEIGHTS),
                        help="comma-separated subset of udp,tcp,ws,rpc,evapi (default: all)")
    args = parser.parse_args()
    channel_names = [name.strip() for name in args.channels.split(",") if name.strip()]
    unknown = [name for name in channel_names if name not in CHANNEL_WEIGHTS]
    if unknown or not channel_names:
        parser.error(f"--channels: expected names from {', '.join(CHANNEL_WEIGHTS)}")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return fuzz(args.duration, args.seed, args.workdir, channel_names)
    with tempfile.TemporaryDirectory(prefix="kamrouter-fuzz-") as workdir:
        return fuzz(args.duration, args.seed, Path(workdir), channel_names)


if __name__ == "__main__":
    sys.exit(main())
