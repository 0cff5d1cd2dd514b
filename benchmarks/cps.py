#!/usr/bin/env python3
"""Call-rate benchmark: sipp UAC -> router -> sipp UAS at stepped rates, side by side.

For each rate in ``--rates`` ascending and each router setup (kamrouter in each
``--routing`` mode, then Kamailio with 1 and with 8 UDP workers), a fresh router relays
``rate x --duration`` calls (INVITE, 180, 200, ACK, BYE, 200, no hold time) between two sipp
processes on 127.0.0.1; a setup stops at the first rate with a failed call. The setups take
turns at each rate, so a change in the machine's load touches them alike. Reported per
setup, at its highest rate with zero failed calls:

- the router's CPU seconds per 1,000 calls (utime+stime of the router's processes, from
  /proc/<pid>/stat, over the UAC's run);
- p50/p99 call-setup time, INVITE sent -> 200 received at the caller (sipp -trace_rtt,
  1 ms resolution).

Everything (both sipps and the router) shares the machine's cores, so the rates are those of
the whole setup; the CPU figures are the router's own. Kamailio runs ``benchmarks/kamailio/
relay.cfg`` (the job of kamrouter's default script) in every routing mode.

    .venv/bin/python benchmarks/cps.py                         # default rates, 20 s per step
    .venv/bin/python benchmarks/cps.py --duration 3 --rates 250,500
    .venv/bin/python benchmarks/cps.py --routers kamrouter --routing script,api-http,api-evapi
    .venv/bin/python benchmarks/cps.py --transport tls --rates 500,1000,1500
    .venv/bin/python benchmarks/cps.py --routers kamrouter --workers 1,2 --pairs 4
    .venv/bin/python benchmarks/cps.py --routers kamrouter --routing dispatcher-4,dispatcher-10 --workers 1,2

With several routing modes, each API mode's rate is also given as a share of script
routing's (the issue's target: at least 70 %). With ``--transport tls`` the caller reaches
the router over TLS (Debian's sipp has no TLS: sipp over TCP to an ``stunnel`` client, which
holds one TLS connection to the router's ``tls:`` socket; Kamailio loads its tls module);
the callee stays on UDP, so every request also crosses from TLS to UDP and back.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the e2e harness: tests/support

from api_routing import KINDS as API_KINDS  # noqa: E402
from api_routing import ApiRouting, Kind  # noqa: E402
from support.ports import free_port, free_port_for  # noqa: E402
from support.proxy import KAMAILIO, ProxyProcess, kamailio_proxy, kamrouter_proxy  # noqa: E402
from support.rpc import rpc_call  # noqa: E402
from support.sipp import Sipp, SippResult, Transport  # noqa: E402
from support.stunnel import Stunnel  # noqa: E402

DEFAULT_RATES = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000)
KAMAILIO_CFG = REPO / "benchmarks" / "kamailio" / "relay.cfg"
#: Kamailio's default number of workers per socket, and the one-worker run to compare a
#: single-process kamrouter with.
KAMAILIO_CHILDREN = (1, 2, 8)
KAMAILIO_SHM_MB = 1024  # high rates keep many transactions in wait state
MAKE_CERTS = REPO / "etc" / "tls" / "make-test-certs.sh"
#: etc/examples/dispatcher_routing.py with one destination (the callee) and that algorithm:
#: with workers, 10 (call load) shares every call's load over the state bus, 4 nothing.
DISPATCHER_MODES = ("dispatcher-4", "dispatcher-10")
ROUTING_MODES = ("script", *DISPATCHER_MODES, *API_KINDS)
DISPATCHER_SCRIPT = REPO / "etc" / "examples" / "dispatcher_routing.py"
#: The machine's load average when the run started (others may share its cores).
LOAD_BEFORE = ""


@dataclass
class Running:
    """A started router, where the caller sends (the router, or a TLS tunnel to it) and
    what to undo after the step."""

    proxy: ProxyProcess
    cleanup: Callable[[], None] = lambda: None
    entry: str | None = None
    transport: Transport = "udp"

    @property
    def caller_sends_to(self) -> str:
        return self.entry or self.proxy.address


#: Starts a router for one step: (workdir, port, UAS host:port) -> Running.
RouterStarter = Callable[[Path, int, str], Running]


@dataclass(frozen=True)
class Tls:
    """The TLS leg of ``--transport tls``: certificates made once per run."""

    certs: Path

    def kamrouter_sections(self, port: int, tls_port: int) -> dict[str, dict[str, object]]:
        return {"core": {"listen": [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}",
                                    f"tls:127.0.0.1:{tls_port}"], "log_level": "warning"},
                "tls": {"server": [{"certificate": str(self.certs / "server.pem"),
                                    "private_key": str(self.certs / "server.key")}]}}

    def kamailio_config(self, workdir: Path) -> Path:
        config = workdir / "tls.cfg"
        workdir.mkdir(parents=True, exist_ok=True)
        config.write_text(f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                          f"certificate = {self.certs / 'server.pem'}\n"
                          f"private_key = {self.certs / 'server.key'}\n"
                          "[client:default]\nverify_certificate = no\n")
        return config

    def tunnel(self, workdir: Path, running: Running, tls_port: int) -> Running:
        """Put an stunnel client in front of the router's TLS socket for the caller."""
        try:
            tunnel = Stunnel(workdir / "stunnel", client=True, connect=tls_port).wait_listening()
        except BaseException:
            running.proxy.stop()
            running.cleanup()
            raise
        cleanup = running.cleanup

        def stop() -> None:
            tunnel.stop()
            cleanup()

        return Running(running.proxy, stop, tunnel.address, "tcp")


def make_certs(workdir: Path) -> Path:
    certs = workdir / "certs"
    subprocess.run(["sh", str(MAKE_CERTS), str(certs)], check=True, capture_output=True,
                   timeout=120)
    return certs


@dataclass
class Step:
    router: str
    rate: int
    calls: int
    successful: int
    failed: int
    seconds: float
    cpu_seconds: float
    setup_ms: list[int]
    #: Requests each kamrouter worker received (empty: one process).
    per_worker: list[int] = field(default_factory=list)
    #: Datagrams the workers passed on to each other (``core:handoff_sent``), and those
    #: they dropped (``core:handoff_dropped``: a full socket of a busy worker).
    handoffs: tuple[int, int] = (0, 0)

    @property
    def passed(self) -> bool:
        """Every call completed: none failed, none still open when sipp gave up."""
        return self.failed == 0 and self.successful == self.calls

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_seconds / max(self.successful, 1) * 1000

    def percentile(self, fraction: float) -> float | None:
        if not self.setup_ms:
            return None
        ordered = sorted(self.setup_ms)
        return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


# -- routers: one starter per (router, routing mode) ---------------------------------------

def kamrouter_starter(routing: str, tls: Tls | None = None, workers: int = 1) -> RouterStarter:
    """kamrouter with its embedded default script, or routed by a reference API controller;
    ``workers`` > 1: that many worker processes under a supervisor (script routing,
    dispatcher's included)."""
    quiet = {"core": {"log_level": "warning", "workers": workers}}

    def start(workdir: Path, port: int, uas: str) -> Running:
        if tls is not None:
            tls_port = free_port()
            proxy = kamrouter_proxy(workdir, port, sections=tls.kamrouter_sections(port, tls_port))
            return tls.tunnel(workdir, Running(proxy.start()), tls_port)
        if routing == "script" or routing in DISPATCHER_MODES:
            sections: dict[str, dict[str, object]] = dict(quiet)
            env = None
            if routing in DISPATCHER_MODES:
                workdir.mkdir(parents=True, exist_ok=True)
                (workdir / "dispatcher.list").write_text(f"1 sip:{uas} 0 0\n")  # no probes
                sections["dispatcher"] = {"list_file": str(workdir / "dispatcher.list")}
                sections["routing"] = {"script": str(DISPATCHER_SCRIPT)}
                env = {"KAMROUTER_DS_ALG": routing.rsplit("-", 1)[1]}
            proxy = kamrouter_proxy(workdir, port, sections=sections, env=env).start()
            return Running(proxy)
        api = ApiRouting(cast(Kind, routing), target=uas, workdir=workdir)
        try:
            proxy = kamrouter_proxy(workdir, port, sections={**api.sections, **quiet}).start()
            api.start_controller()
        except BaseException:
            api.stop()
            raise
        return Running(proxy, api.stop)

    return start


def kamailio_starter(children: int, tls: Tls | None = None) -> RouterStarter:
    def start(workdir: Path, port: int, uas: str) -> Running:
        if tls is None:
            return Running(kamailio_proxy(workdir, port, cfg=KAMAILIO_CFG, children=children,
                                          shm_mb=KAMAILIO_SHM_MB).start())
        tls_port = free_port()
        proxy = kamailio_proxy(workdir, port, cfg=KAMAILIO_CFG, children=children,
                               shm_mb=KAMAILIO_SHM_MB, listens=[f"tls:127.0.0.1:{tls_port}"],
                               defines={"WITH_TLS": 1,
                                        "TLS_CONFIG": str(tls.kamailio_config(workdir))})
        return tls.tunnel(workdir, Running(proxy.start()), tls_port)

    return start


def router_setups(routers: list[str], routings: list[str], tls: Tls | None = None,
                  workers: tuple[int, ...] = (1,)) -> list[tuple[str, RouterStarter]]:
    setups = []
    for router in routers:
        if router == "kamrouter":
            for routing in routings:
                label = "kamrouter" if routing == "script" else f"kamrouter ({routing})"
                setups.append((label, kamrouter_starter(routing, tls)))
            for routing in [r for r in routings if r == "script" or r in DISPATCHER_MODES]:
                for count in workers:
                    if count > 1 and tls is None:
                        what = "" if routing == "script" else f"{routing}, "
                        setups.append((f"kamrouter ({what}{count} workers)",
                                       kamrouter_starter(routing, None, count)))
        else:
            for children in KAMAILIO_CHILDREN:
                setups.append((f"kamailio ({children} worker{'s' * (children > 1)})",
                               kamailio_starter(children, tls)))
    return setups


# -- one step ------------------------------------------------------------------------------

def run_step(label: str, start_router: RouterStarter, rate: int, duration: float,
             workdir: Path, pairs: int = 1) -> Step:
    """``rate`` calls/s for ``duration`` s, split over ``pairs`` caller/callee sipp pairs
    (each caller sends from its own port: kamrouter's workers share calls by source port,
    modulo their number; callers' ports of every residue modulo ``pairs`` give each of
    workers that divide ``pairs`` the same share)."""
    calls = [max(1, round(rate * duration / pairs)) for _ in range(pairs)]
    # Bounded: sipp gives up after the duration plus time for the last calls to finish.
    timeout_s = duration + 15
    uases = [Sipp(f"uas{n}", "uas.xml", workdir, port=free_port(), calls=calls[n],
                  timeout_s=timeout_s) for n in range(pairs)]
    running = start_router(workdir / "router", free_port(), uases[0].address)
    # -l: room for 10 s worth of open calls, so sipp does not throttle a slow router.
    uacs = [Sipp(f"uac{n}", "uac.xml", workdir, port=free_port_for(n, pairs),
                 remote=uases[n].address,
                 outbound_proxy=running.caller_sends_to, transport=running.transport,
                 calls=calls[n], rate=rate / pairs, timeout_s=timeout_s, trace_rtt=True,
                 extra_args=("-l", str(max(10, rate * 10 // pairs)))) for n in range(pairs)]
    try:
        for uas in uases:
            uas.start()
        for uas in uases:
            uas.wait_listening()
        cpu_before, started = process_tree_cpu(running.proxy.pid), time.monotonic()
        for uac in uacs:
            uac.start()
        results = [uac.wait() for uac in uacs]
        seconds = time.monotonic() - started
        cpu = process_tree_cpu(running.proxy.pid) - cpu_before
        for uas in uases:
            uas.wait(timeout=5)
        per_worker, handoffs = worker_requests(running.proxy)
    finally:
        for peer in [*uacs, *uases]:
            peer.kill()
        running.proxy.stop()
        running.cleanup()
    return Step(label, rate, sum(calls), sum(r.successful for r in results),
                sum(r.failed for r in results), seconds, cpu,
                [ms for result in results for ms in setup_times(result)], per_worker,
                handoffs)


def worker_requests(proxy: ProxyProcess) -> tuple[list[int], tuple[int, int]]:
    """Requests each worker of a kamrouter with workers received (how the callers' source
    ports spread the calls; empty for one process or Kamailio), and the datagrams they
    handed to each other and dropped."""
    counts, sent, dropped = [], 0, 0
    for socket_path in sorted((proxy.workdir / "run").glob("worker-*.sock")):
        fetched = rpc_call(socket_path, "stats.fetchn", "core:rcv_requests",
                           "core:handoff_sent", "core:handoff_dropped")
        counts.append(int(fetched["core.rcv_requests"]))
        sent += int(fetched.get("core.handoff_sent", 0))
        dropped += int(fetched.get("core.handoff_dropped", 0))
    return counts, (sent, dropped)


def setup_times(result: SippResult) -> list[int]:
    """INVITE -> 200 times in ms of every call (sipp -trace_rtt rows of the "setup" rtd)."""
    times = []
    for path in result.rtt_files:
        for line in path.read_text().splitlines()[1:]:
            fields = line.split(";")
            if len(fields) >= 3 and fields[2] == "setup":
                times.append(int(float(fields[1])))
    return times


def process_tree_cpu(pid: int) -> float:
    """utime+stime in seconds of ``pid`` and all its descendants (Kamailio forks workers)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


# -- running and reporting -----------------------------------------------------------------

def benchmark(setups: list[tuple[str, RouterStarter]], rates: list[int], duration: float,
              workdir: Path, pairs: int = 1) -> dict[str, list[Step]]:
    """Every rate for every setup still passing, the setups taking turns at each rate."""
    results: dict[str, list[Step]] = {label: [] for label, _ in setups}
    for rate in rates:
        for label, start_router in setups:
            steps = results[label]
            if steps and not steps[-1].passed:
                continue
            step = run_step(label, start_router, rate, duration, workdir / f"{label}-{rate}",
                            pairs)
            steps.append(step)
            print(f"  {label:<24} {rate:>6} calls/s: {step.successful}/{step.calls} completed, "
                  f"{step.failed} failed, in {step.seconds:.1f} s, "
                  f"{step.cpu_per_1000:.3f} CPU s/1000 calls"
                  + (f", requests per worker {step.per_worker}, hand-offs per call "
                     f"{step.handoffs[0] / max(step.successful, 1):.2f} "
                     f"({step.handoffs[1]} dropped)" if step.per_worker else ""),
                  file=sys.stderr, flush=True)
    return results


def best(steps: list[Step]) -> Step | None:
    """The highest-rate step with zero failed calls."""
    passed = [step for step in steps if step.passed]
    return passed[-1] if passed else None


def summary_table(results: dict[str, list[Step]]) -> str:
    rows = ["| router | max calls/s, 0 failed | CPU s / 1,000 calls | setup p50 ms | "
            "setup p99 ms | first failing rate |",
            "|---|---:|---:|---:|---:|---:|"]
    for label, steps in results.items():
        top = best(steps)
        failing = next((f"{s.rate} ({s.calls - s.successful} of {s.calls} not completed)"
                        for s in steps if not s.passed), "-")
        if top is None:
            rows.append(f"| {label} | none | - | - | - | {failing} |")
            continue
        rows.append(f"| {label} | {top.rate:,} | {top.cpu_per_1000:.3f} | "
                    f"{_ms(top.percentile(0.5))} | {_ms(top.percentile(0.99))} | {failing} |")
    return "\n".join(rows)


def ratio_lines(results: dict[str, list[Step]]) -> list[str]:
    """Each API routing mode against script routing, and each Kamailio run against
    kamrouter: the share or multiple of the rate, and the CPU per call."""
    ours = {label: best(steps) for label, steps in results.items()
            if label.startswith("kamrouter")}
    lines = []
    script = ours.get("kamrouter")
    for label, api in ours.items():
        if label == "kamrouter" or api is None or script is None:
            continue
        lines.append(f"{label} / kamrouter (script): {100 * api.rate / script.rate:.0f} % of "
                     f"the call rate, {api.cpu_per_1000 - script.cpu_per_1000:+.2f} ms CPU per "
                     f"call")
    for label, steps in results.items():
        theirs = best(steps)
        if label.startswith("kamrouter") or theirs is None:
            continue
        # relay.cfg does the job of the default script: compare with that run when made.
        compared = {"kamrouter": script} if "kamrouter" in ours else ours
        for our_label, our in compared.items():
            if our is None:
                continue
            lines.append(f"{label} / {our_label}: {theirs.rate / our.rate:.1f}x the call rate, "
                         f"{our.cpu_per_1000 / max(theirs.cpu_per_1000, 1e-9):.1f}x less CPU "
                         f"per call")
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


# -- command line --------------------------------------------------------------------------

def ensure_command(command: str, package: str) -> None:
    """Install a Debian package when its command is missing (the benchmark machine is root)."""
    if shutil.which(command) or Path(command).exists():
        return
    print(f"installing {package} (for {command}) with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--routers", default="kamrouter,kamailio",
                        help="comma-separated: kamrouter, kamailio (default: both)")
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)),
                        help="comma-separated call rates in calls/s, tried in ascending order")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds of calls per rate step (default 20)")
    parser.add_argument("--routing", default="script",
                        help="comma-separated ways kamrouter routes, each a setup of its own: "
                             f"{', '.join(ROUTING_MODES)} (its default script, or a reference "
                             "API controller over HTTP or evapi; Kamailio: always relay.cfg)")
    parser.add_argument("--workers", default="1",
                        help="comma-separated kamrouter [core] workers counts, each above 1 "
                             "a setup of its own beside the one-process run (e.g. 1,2)")
    parser.add_argument("--pairs", type=int, default=1,
                        help="sipp caller/callee pairs sharing each rate (default 1; use "
                             "several with --workers: a caller's calls all reach one worker)")
    parser.add_argument("--transport", choices=("udp", "tls"), default="udp",
                        help="how the caller reaches the router (tls: through stunnel)")
    parser.add_argument("--workdir", type=Path,
                        help="keep sipp and router files here (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    args.routers = [name.strip() for name in args.routers.split(",") if name.strip()]
    unknown = sorted(set(args.routers) - {"kamrouter", "kamailio"})
    if unknown:
        parser.error(f"--routers: unknown {', '.join(unknown)} (known: kamrouter, kamailio)")
    args.routing = [mode.strip() for mode in args.routing.split(",") if mode.strip()]
    unknown = sorted(set(args.routing) - set(ROUTING_MODES))
    if unknown or not args.routing:
        parser.error(f"--routing: unknown {', '.join(unknown) or 'empty'} "
                     f"(known: {', '.join(ROUTING_MODES)})")
    try:
        args.rates = sorted({int(rate) for rate in args.rates.split(",") if rate.strip()})
    except ValueError:
        parser.error(f"--rates: expected comma-separated integers, got {args.rates!r}")
    if not args.rates or args.rates[0] <= 0:
        parser.error("--rates: give at least one positive rate")
    if args.duration <= 0:
        parser.error("--duration: must be positive")
    try:
        args.workers = tuple(sorted({int(n) for n in args.workers.split(",") if n.strip()}))
    except ValueError:
        parser.error(f"--workers: expected comma-separated integers, got {args.workers!r}")
    if not args.workers or args.workers[0] < 1:
        parser.error("--workers: give counts of at least 1")
    if not 1 <= args.pairs <= 16:
        parser.error("--pairs: must be between 1 and 16")
    return args


@contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
    else:
        with tempfile.TemporaryDirectory(prefix="kamrouter-cps-") as tmp:
            yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    global LOAD_BEFORE
    args = parse_args(argv)
    LOAD_BEFORE = " ".join(f"{load:.2f}" for load in os.getloadavg())
    ensure_command("sipp", "sip-tester")
    if "kamailio" in args.routers:
        ensure_command(KAMAILIO, "kamailio")
    if args.transport == "tls":
        ensure_command("stunnel4", "stunnel4")
        if "kamailio" in args.routers:
            ensure_command("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so",
                           "kamailio-tls-modules")
    with workspace(args.workdir) as workdir:
        tls = Tls(make_certs(workdir)) if args.transport == "tls" else None
        results = benchmark(router_setups(args.routers, args.routing, tls, args.workers),
                            args.rates, args.duration, workdir, args.pairs)
    over = " (caller over TLS via stunnel)" if args.transport == "tls" else ""
    print(f"\nCall-rate steps of {args.duration:g} s (rates {', '.join(map(str, args.rates))}"
          f" calls/s, {args.pairs} sipp caller/callee pair(s)){over}, {os.cpu_count()} CPUs "
          f"shared by the sipps and the router; load average before: {LOAD_BEFORE}:\n")
    print(summary_table(results))
    for line in ratio_lines(results):
        print(f"\n{line}", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
