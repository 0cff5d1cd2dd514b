#!/usr/bin/env python3
"""Authenticated registrations per second: sipp REGISTER -> 401 -> REGISTER with digest
credentials -> 200, kamrouter side by side with Kamailio in one run.

kamrouter runs a registrar script (auth_check against a SQLite subscriber table, save() into
usrloc in memory); Kamailio 5.6 runs ``benchmarks/kamailio/registrar.cfg`` (registrar +
usrloc in memory + auth + auth_db on SQLite, indexed) with 2 workers. Both challenge with MD5 and
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

Two more setups share usrloc through a real redis-server (in memory, on a free port, emptied
before each step; README "Several nodes"): ``kamrouter-redis``, one node with
``[usrloc] db_mode = "redis"``, and ``kamrouter-2nodes``, two such nodes with one sipp each
at half the rate (each registering a user of its own); Redis's CPU is printed apart. ``kamrouter-2workers`` is
one router with two worker processes sharing usrloc through Redis, driven by four sipps;
``kamrouter-2workers-memory`` the same with usrloc in memory, shared by the state bus.

    .venv/bin/python benchmarks/registrations.py --rates 1000,2000,3000,4000 --duration 5
    .venv/bin/python benchmarks/registrations.py --routers kamrouter,kamrouter-redis,kamrouter-2nodes
"""
from __future__ import annotations

import argparse
import sqlite3
import subprocess
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
from support.ports import free_port, free_port_for  # noqa: E402
from support.proxy import KAMAILIO, ProxyProcess, kamailio_proxy, kamrouter_proxy  # noqa: E402
from support.redis import REDIS_CLI, RedisServer  # noqa: E402
from support.sipp import Sipp  # noqa: E402

from kamrouter.modules.auth.subscribers import SqliteSubscribers, Subscriber  # noqa: E402

SCENARIO = REPO / "benchmarks" / "sipp" / "register_auth.xml"
KAMAILIO_CFG = REPO / "benchmarks" / "kamailio" / "registrar.cfg"
KAMAILIO_WORKERS = 2
#: sipps per router for the setups that need several (see run_step).
CALLERS = {"kamrouter-2workers": 4, "kamrouter-2workers-memory": 4}
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

#: Starts the router(s) of a setup in a directory: one sipp registers through each.
Starter = Callable[[Path], list[ProxyProcess]]
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
    store_cpu: float = 0.0  # Redis's, for the setups sharing usrloc through it

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


def kamrouter_starter(accounts: list[tuple[str, str]], nodes: int = 1,
                      redis: RedisServer | None = None, workers: int = 1) -> Starter:
    """``nodes`` kamrouters of ``workers`` processes each sharing one subscriber file,
    usrloc in memory or (``redis``) shared through Redis."""
    def start(workdir: Path) -> list[ProxyProcess]:
        workdir.mkdir(parents=True, exist_ok=True)
        db = SqliteSubscribers(workdir / "subscriber.sqlite")
        for user, password in accounts:
            db.put(Subscriber.with_password(user, DOMAIN, password))
        db.close()
        usrloc: dict[str, str] = {"db_mode": "memory"}
        if redis is not None:
            subprocess.run([REDIS_CLI, "-p", str(redis.port), "flushall"], check=True,
                           capture_output=True, timeout=30)
            usrloc = {"db_mode": "redis", "redis_url": redis.url}
        sections = {"core": {"log_level": "warning", "workers": workers}, "usrloc": usrloc,
                    "registrar": {"default_expires": 3600},
                    "auth": {"db_file": str(workdir / "subscriber.sqlite"),
                             "algorithms": ["MD5"], "qop": "auth"}}
        return [kamrouter_proxy(workdir / f"node{i}", free_port(), script=SCRIPT,
                                sections=sections).start() for i in range(nodes)]
    return start


def kamailio_starter(accounts: list[tuple[str, str]]) -> Starter:
    """Kamailio with its subscribers in SQLite, indexed by username and domain as auth_db
    looks them up (db_text scans the whole table for each REGISTER: with 10,000 users that
    was most of Kamailio's CPU and held it at 2,000/s)."""
    def start(workdir: Path) -> list[ProxyProcess]:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "kamailio-subscriber.sqlite"
        db = sqlite3.connect(path)
        db.executescript(
            "CREATE TABLE version (table_name TEXT PRIMARY KEY, table_version INTEGER);"
            "INSERT INTO version VALUES ('subscriber', 7);"
            "CREATE TABLE subscriber (id INTEGER PRIMARY KEY, username TEXT, domain TEXT,"
            " password TEXT DEFAULT '', ha1 TEXT, ha1b TEXT);"
            "CREATE UNIQUE INDEX account_idx ON subscriber (username, domain);")
        db.executemany("INSERT INTO subscriber (username, domain, ha1, ha1b) VALUES (?,?,?,?)",
                       [(s.username, s.domain, s.ha1, s.ha1b) for s in
                        (Subscriber.with_password(u, DOMAIN, p) for u, p in accounts)])
        db.commit()
        db.close()
        return [kamailio_proxy(workdir, free_port(), cfg=KAMAILIO_CFG,
                               children=KAMAILIO_WORKERS, defines={"DBURL": f"sqlite:///{path}"},
                               shm_mb=256).start()]
    return start


def run_step(label: str, start: Starter, rate: int, duration: float, workdir: Path,
             users: list[tuple[str, str]], store_pid: int | None = None,
             callers: int = 1) -> Step:
    """``rate`` registrations/s for ``duration`` s, split evenly over ``callers`` sipps per
    router of the setup (each registering a user of its own). Several callers are what
    spreads the load over worker processes: the kernel hands what comes from a source port
    to worker port % workers, so the callers' ports take every residue modulo ``callers``."""
    proxies = start(workdir / "router")
    targets = [proxy for proxy in proxies for _ in range(callers)]
    share = rate / len(targets)
    count = max(1, round(share * duration))
    uacs = [Sipp(f"uac{i}", str(SCENARIO), workdir, port=free_port_for(i, callers),
                 remote=proxy.address,
                 calls=count, rate=share, timeout_s=duration + 15,
                 extra_args=("-s", user, "-ap", password, "-l", str(rate * 10)))
            for i, (proxy, (user, password)) in enumerate(zip(targets, users))]
    try:
        cpu_before = sum(process_tree_cpu(proxy.pid) for proxy in proxies)
        store_before = process_tree_cpu(store_pid) if store_pid else 0.0
        started = time.monotonic()
        for uac in uacs:
            uac.start()
        results = [uac.wait() for uac in uacs]
        seconds = time.monotonic() - started
        cpu = sum(process_tree_cpu(proxy.pid) for proxy in proxies) - cpu_before
        store_cpu = (process_tree_cpu(store_pid) if store_pid else 0.0) - store_before
    finally:
        for uac in uacs:
            uac.kill()
        for proxy in proxies:
            proxy.stop()
    retransmissions = sum(int(r.stats.get("Retransmissions(C)", 0) or 0) for r in results)
    return Step(label, rate, count * len(uacs), sum(r.successful for r in results),
                sum(r.failed for r in results), cpu, seconds, retransmissions, store_cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rates", default="1000,2000,3000,4000,5000,6000")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--routers", default="kamrouter,kamailio",
                        help="of kamrouter, kamailio, kamrouter-redis, kamrouter-2nodes, "
                        "kamrouter-2workers (2 worker processes, usrloc through Redis), "
                        "kamrouter-2workers-memory (usrloc in memory, shared by the state bus)")
    args = parser.parse_args(argv)
    rates = sorted({int(r) for r in args.rates.split(",") if r.strip()})
    routers = [r.strip() for r in args.routers.split(",") if r.strip()]
    ensure_command("sipp", "sip-tester")
    if "kamailio" in routers:
        ensure_command(KAMAILIO, "kamailio")
    accounts = users(args.users)
    results: dict[str, list[Step]] = {r: [] for r in routers}
    with tempfile.TemporaryDirectory(prefix="kamrouter-reg-") as tmp:
        redis = None
        if any(r.startswith("kamrouter-") for r in routers):
            redis = RedisServer(Path(tmp) / "redis", persist=False).start()
        starters = {"kamrouter": kamrouter_starter(accounts),
                    "kamailio": kamailio_starter(accounts),
                    "kamrouter-redis": kamrouter_starter(accounts, 1, redis),
                    "kamrouter-2nodes": kamrouter_starter(accounts, 2, redis),
                    "kamrouter-2workers": kamrouter_starter(accounts, 1, redis, workers=2),
                    "kamrouter-2workers-memory": kamrouter_starter(accounts, 1, workers=2)}
        store_pid = redis.process.pid if redis is not None and redis.process else None
        try:
            for rate in rates:
                for router in routers:
                    steps = results[router]
                    if steps and not steps[-1].passed:
                        continue
                    step = run_step(router, starters[router], rate, args.duration,
                                    Path(tmp) / f"{router}-{rate}",
                                    accounts[len(accounts) // 2:],
                                    store_pid if router.startswith("kamrouter-") else None,
                                    CALLERS.get(router, 1))
                    steps.append(step)
                    print(f"  {router:<16} {rate:>6}/s: {step.successful}/"
                          f"{step.registrations} registered, {step.failed} failed, "
                          f"{step.achieved:,.0f}/s achieved, "
                          f"{step.retransmissions} retransmissions, "
                          f"{step.cpu / max(1, step.successful) * 1000:.3f} CPU s/1000"
                          + (f" (Redis {step.store_cpu / max(1, step.successful) * 1000:.3f})"
                             if step.store_cpu else ""), file=sys.stderr, flush=True)
                    time.sleep(0.5)
        finally:
            if redis is not None:
                redis.stop()
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
            f"{step.cpu / step.successful * 1000:.3f} CPU s per 1,000"
            + (f" (+ Redis {step.store_cpu / step.successful * 1000:.3f})"
               if step.store_cpu else ""))
        print(f"  {router:<16} {kept}; at most {top:,.0f}/s achieved without a failure")
    if best.get("kamrouter") and best.get("kamailio"):
        ratio = best["kamrouter"].rate / best["kamailio"].rate  # type: ignore[union-attr]
        print(f"  kamrouter/kamailio rate ratio: {ratio:.2f}")
    if achieved.get("kamrouter") and achieved.get("kamailio"):
        print(f"  kamrouter/kamailio achieved-rate ratio: "
              f"{achieved['kamrouter'] / achieved['kamailio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
