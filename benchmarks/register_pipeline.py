"""CPU cost of one authenticated registration, in process: no sockets, no sipp.

A phone is simulated with the SIP library: REGISTER → 401 (MD5 challenge, qop=auth) →
REGISTER with Authorization → 200, through a real :class:`~kamrouter.core.router.Router`
running ``benchmarks/registrations.py``'s registrar script (auth_check against a SQLite
subscriber table, save into usrloc in memory), the transports' ``send`` replaced by a list.
Only the CPU time of this thread inside the router's receive path is counted (the phone's
digest is not; time.thread_time, so other processes on the machine do not inflate it): the
Python part of ``registrations.py``'s figure, a stable target for profiling:

    .venv/bin/python benchmarks/register_pipeline.py [--registrations N] [--profile]
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import Wire, best_of_3_or_profile  # noqa: E402
from pipeline import build_router as build_recording_router  # noqa: E402
from registrations import DOMAIN, SCRIPT  # noqa: E402

from kamrouter.core.router import Router, available_modules  # noqa: E402
from kamrouter.core.settings import build_settings  # noqa: E402
from kamrouter.modules.auth.subscribers import SqliteSubscribers, Subscriber  # noqa: E402
from kamrouter.net import Endpoint  # noqa: E402

PHONE = Endpoint("udp", "127.0.0.1", 5071)
USER, PASSWORD = "u000001", "pw000001"
_NONCE = re.compile(rb'nonce="([^"]+)"')


def build_router(workdir: Path) -> tuple[Router, Wire, Endpoint]:
    db = SqliteSubscribers(workdir / "subscriber.sqlite")
    db.put(Subscriber.with_password(USER, DOMAIN, PASSWORD))
    db.close()
    (workdir / "routes.py").write_text(SCRIPT)
    raw = {"core": {"listen": ["udp:127.0.0.1:0"], "log_level": "warning"},
           "routing": {"script": "routes.py"}, "usrloc": {"db_mode": "memory"},
           "registrar": {"default_expires": 3600},
           "auth": {"db_file": "subscriber.sqlite", "algorithms": ["MD5"], "qop": "auth"}}
    return build_recording_router(build_settings(raw, set(available_modules()), workdir))


def register(n: int, cseq: int, authorization: str = "") -> bytes:
    return (f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {PHONE.host}:{PHONE.port};branch=z9hG4bK-r{n}-{cseq}\r\n"
            f"From: <sip:{USER}@{DOMAIN}>;tag=r{n}\r\nTo: <sip:{USER}@{DOMAIN}>\r\n"
            f"Call-ID: reg-{n}@bench\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{USER}@{PHONE.host}:{PHONE.port}>\r\nExpires: 3600\r\n"
            f"Max-Forwards: 70\r\n{authorization}Content-Length: 0\r\n\r\n").encode()


def authorization(challenge: bytes) -> str:
    """What sipp's [authentication] sends for the challenge (MD5, qop=auth)."""
    found = _NONCE.search(challenge)
    assert found is not None, challenge
    nonce = found.group(1).decode()

    def h(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    uri, cnonce, nc = f"sip:{DOMAIN}", "6b8b4567", "00000001"
    digest = h(f"{h(f'{USER}:{DOMAIN}:{PASSWORD}')}:{nonce}:{nc}:{cnonce}:auth:"
               f"{h(f'REGISTER:{uri}')}")
    return (f'Authorization: Digest username="{USER}",realm="{DOMAIN}",cnonce="{cnonce}",'
            f'nc={nc},qop=auth,uri="{uri}",nonce="{nonce}",response="{digest}",'
            f"algorithm=MD5\r\n")


def one_registration(router: Router, wire: Wire, local: Endpoint, n: int) -> float:
    """Seconds the router spent on one registration (both REGISTERs and their replies)."""
    receive = router.proxy.on_message
    clock = time.thread_time
    started = clock()
    receive(register(n, 1), PHONE, local)
    spent = clock() - started
    challenge = wire.sent[-1][0]
    assert challenge.startswith(b"SIP/2.0 401"), challenge
    second = register(n, 2, authorization(challenge))
    started = clock()
    receive(second, PHONE, local)
    spent += clock() - started
    assert wire.sent[-1][0].startswith(b"SIP/2.0 200"), wire.sent[-1][0]
    wire.sent.clear()
    return spent


def run(registrations: int) -> float:
    with tempfile.TemporaryDirectory(prefix="kamrouter-regbench-") as tmp:
        router, wire, local = build_router(Path(tmp))
        one_registration(router, wire, local, 0)  # warm up caches and imports
        spent = 0.0
        for n in range(1, registrations + 1):
            spent += one_registration(router, wire, local, n)
            if n % 1000 == 0:  # free transactions as the wait timer would
                router.scheduler.fire_due(router.clock() + 3600)
        return spent / registrations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registrations", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    args = parser.parse_args()
    best = best_of_3_or_profile(run, args.registrations, args.profile)
    if best is None:
        return
    print(f"one authenticated registration (2 REGISTERs in, 401 + 200 out): "
          f"{best * 1e6:.0f} us (best of 3 x {args.registrations}) = {1 / best:,.0f} "
          "registrations/s of pure Python work")


if __name__ == "__main__":
    main()
