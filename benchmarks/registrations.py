#!/usr/bin/env python3
"""Authenticated registrations per second: sipp REGISTER -> 401 -> REGISTER with digest
credentials -> 200, kamrouter side by side with Kamailio in one run.

kamrouter runs a registrar script (auth_check against a SQLite subscriber table, save() into
usrloc in memory); Kamailio 5.6 runs ``benchmarks/kamailio/registrar.cfg`` (registrar +
usrloc in memory + auth + auth_db on db_text) with 2 workers. Both challenge with MD5 and
qop=auth. ``--users`` subscribers are in each router's table; one of them registers again and
again (sipp 3.6 cannot take digest credentials from an injection file), each REGISTER with
a new Call-ID refreshing its binding. Each rate runs ``--duration`` s against a fresh router, the routers taking
turns; a router stops at its first rate it did not keep up with: a registration failed, or
the registrations took so long that fewer than ``KEEP_UP`` of the offered rate completed
per second of sipp's run (a slow router's challenges to retransmitted REGISTERs are
absorbed by sipp as retransmissions, so its calls end late instead of failing). Printed: the
highest rate kept up with, the router's CPU per 1,000 registrations, the highest rate
achieved in any step, and the ratios; each step also shows the rate achieved and sipp's
retransmissions.

    .venv/bin/python benchmarks/registrations.py --rates 1000,2000,3000,4000 --duration 5
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the e2e harness: tests/support
sys.path.insert(0, str(REPO / "benchmarks"))

from cps import ensure_command, process_tree_cpu  # noqa: E402
from support.ports import free_port  # noqa: E402
from support.proxy import KAMAILIO, ProxyProcess, kamailio_proxy, kamrouter_proxy  # noqa: E402
from support.sipp import Sipp  # noqa: E402

from kamrouter.modules.auth.subscribers import SqliteSubscribers, Subscriber  # noqa: E402

SCENARIO = REPO / "benchmarks" / "sipp" / "register_auth.xml"
KAMAILIO_CFG = REPO / "benchmarks" / "kamailio" / "registrar.cfg"
KAMAILIO_WORKERS = 2
DOMAIN = "example.com"
SCRIPT = f'''\
from kamrouter.script import auth, registrar, sl

def request_route(msg):
    if msg.method != "REGISTER":
        sl.send_reply(msg, 404, "Not here")
        return
    if not auth.auth_check(msg, "{DOMAIN}", "subscriber", 1):
        auth.auth_challenge(msg, "{DOMAIN}")
        return
    auth.consume_credentials(msg)
    registrar.save(msg, "location")
'''

Starter = Callable[[Path, int], ProxyProcess]
#: Share of the offered rate a step must complete per second of sipp's run (its start-up
#: included) to count as kept up with.
KEEP_UP = 0.85


@dataclass
class Step:
    router: str
    rate: int
    registrations: int
    successful: int
    failed: int
    cpu: float
    #: Seconds sipp ran, and the retransmissions it had to send.
    seconds: float
    retransmissions: int

    @property
    def achieved(self) -> float:
        """Registrations completed per second of sipp's run."""
        return self.successful / self.seconds if self.seconds > 0 else 0.0

    @property
    def passed(self) -> bool:
        return self.failed == 0 and self.successful == self.registrations \
            and self.achieved >= KEEP_UP * self.rate


def users(count: int) -> list[tuple[str, str]]:
    return [(f"u{i:06d}", f"pw{i:06d}") for i in range(count)]


def kamrouter_starter(accounts: list[tuple[str, str]]) -> Starter:
    def start(workdir: Path, port: int) -> ProxyProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        db = SqliteSubscribers(workdir / "subscriber.sqlite")
        for user, password in accounts:
            db.put(Subscriber.with_password(user, DOMAIN, password))
        db.close()
        sections = {"core": {"log_level": "warning"}, "usrloc": {"db_mode": "memory"},
                    "registrar": {"default_expires": 3600},
                    "auth": {"db_file": str(workdir / "subscriber.sqlite"),
                             "algorithms": ["MD5"], "qop": "auth"}}
        return kamrouter_proxy(workdir, port, script=SCRIPT, sections=sections).start()
    return start


def kamailio_starter(accounts: list[tuple[str, str]]) -> Starter:
    def start(workdir: Path, port: int) -> ProxyProcess:
        dbdir = workdir / "dbtext"
        dbdir.mkdir(parents=True, exist_ok=True)
        (dbdir / "version").write_text("table_name(str) table_version(int)\nsubscriber:7\n")
        rows = "".join(f"{i + 1}:{s.username}:{s.domain}::{s.ha1}:{s.ha1b}\n" for i, s in
                       enumerate(Subscriber.with_password(u, DOMAIN, p) for u, p in accounts))
        (dbdir / "subscriber").write_text(
            "id(int,auto) username(str) domain(str) password(str,null) ha1(str) ha1b(str)\n" + rows)
        return kamailio_proxy(workdir, port, cfg=KAMAILIO_CFG, children=KAMAILIO_WORKERS,
                              defines={"DBURL": f"text://{dbdir}"}, shm_mb=256).start()
    return start


def run_step(label: str, start: Starter, rate: int, duration: float, workdir: Path,
             user: tuple[str, str]) -> Step:
    count = max(1, round(rate * duration))
    proxy = start(workdir / "router", free_port())
    uac = Sipp("uac", str(SCENARIO), workdir, port=free_port(), remote=proxy.address,
               calls=count, rate=rate, timeout_s=duration + 15,
               extra_args=("-s", user[0], "-ap", user[1], "-l", str(rate * 10)))
    try:
        cpu_before = process_tree_cpu(proxy.pid)
        started = time.monotonic()
        result = uac.start().wait()
        seconds = time.monotonic() - started
        cpu = process_tree_cpu(proxy.pid) - cpu_before
    finally:
        uac.kill()
        proxy.stop()
    return Step(label, rate, count, result.successful, result.failed, cpu, seconds,
                int(result.stats.get("Retransmissions(C)", 0) or 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rates", default="1000,2000,3000,4000,5000,6000")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--routers", default="kamrouter,kamailio")
    args = parser.parse_args(argv)
    rates = sorted({int(r) for r in args.rates.split(",") if r.strip()})
    routers = [r.strip() for r in args.routers.split(",") if r.strip()]
    ensure_command("sipp", "sip-tester")
    if "kamailio" in routers:
        ensure_command(KAMAILIO, "kamailio")
    accounts = users(args.users)
    starters = {"kamrouter": kamrouter_starter(accounts),
                "kamailio": kamailio_starter(accounts)}
    results: dict[str, list[Step]] = {r: [] for r in routers}
    with tempfile.TemporaryDirectory(prefix="kamrouter-reg-") as tmp:
        for rate in rates:
            for router in routers:
                steps = results[router]
                if steps and not steps[-1].passed:
                    continue
                step = run_step(router, starters[router], rate, args.duration,
                                Path(tmp) / f"{router}-{rate}", accounts[len(accounts) // 2])
                steps.append(step)
                print(f"  {router:<10} {rate:>6}/s: {step.successful}/{step.registrations} "
                      f"registered, {step.failed} failed, {step.achieved:,.0f}/s achieved, "
                      f"{step.retransmissions} retransmissions, "
                      f"{step.cpu / max(1, step.successful) * 1000:.3f} CPU s/1000",
                      file=sys.stderr, flush=True)
                time.sleep(0.5)
    print(f"\nAuthenticated registrations, {args.duration:g} s steps, {args.users} users:")
    best: dict[str, Step | None] = {}
    achieved: dict[str, float] = {}
    for router, steps in results.items():
        passed = [s for s in steps if s.passed]
        best[router] = passed[-1] if passed else None
        step = best[router]
        top = max((s.achieved for s in steps if s.failed == 0), default=0.0)
        achieved[router] = top
        kept = "no rate kept up with" if step is None else (
            f"{step.rate:>6} registrations/s kept up with, "
            f"{step.cpu / step.successful * 1000:.3f} CPU s per 1,000")
        print(f"  {router:<10} {kept}; at most {top:,.0f}/s achieved without a failure")
    if best.get("kamrouter") and best.get("kamailio"):
        ratio = best["kamrouter"].rate / best["kamailio"].rate  # type: ignore[union-attr]
        print(f"  kamrouter/kamailio rate ratio: {ratio:.2f}")
    if achieved.get("kamrouter") and achieved.get("kamailio"):
        print(f"  kamrouter/kamailio achieved-rate ratio: "
              f"{achieved['kamrouter'] / achieved['kamailio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
