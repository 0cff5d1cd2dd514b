"""Script reloads that fail keep the running script; reloads read the current source; hooks
that block the event loop are reported."""
from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamrouter.config import build_section
from kamrouter.script.loader import ScriptError, load_script
from kamrouter.script.watch import HookTimer
from kamrouter.stats import Counter
from support.ports import LOOPBACK, free_port
from support.proxy import ProxyProcess, kamrouter_proxy
from support.rpc import RpcFailed
from support.wait import wait_until

VERSION = '''
from kamrouter.script import sl

def request_route(msg):
    if msg.method != "ACK":
        sl.send_reply(msg, {code}, "Version {code}")
'''


def answer_of(proxy: ProxyProcess) -> str:
    """The status line the router answers an OPTIONS with (one UDP exchange)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(20)
        port = sock.getsockname()[1]
        sock.sendto((f"OPTIONS sip:x@{LOOPBACK} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK{os.urandom(4).hex()}\r\n"
                     f"Max-Forwards: 70\r\nFrom: <sip:a@{LOOPBACK}>;tag=1\r\n"
                     f"To: <sip:x@{LOOPBACK}>\r\nCall-ID: {os.urandom(6).hex()}\r\n"
                     f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(),
                    (LOOPBACK, proxy.port))
        return sock.recv(65535).split(b"\r\n", 1)[0].decode()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[ProxyProcess]:
    proxy = kamrouter_proxy(tmp_path, free_port(), script=VERSION.format(code=480),
                            sections={"routing": {"slow_hook_ms": 100}}).start()
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("failure", ["raise SystemExit(3)", "raise KeyboardInterrupt",
                                     "import sys\nsys.exit()", "1 / 0"])
def test_a_reload_whose_import_raises_anything_keeps_the_old_script(
        router: ProxyProcess, failure: str) -> None:
    assert answer_of(router) == "SIP/2.0 480 Version 480"
    script = router.workdir / "routes.py"
    script.write_text(VERSION.format(code=481) + failure + "\n")
    with pytest.raises(RpcFailed) as failed:
        router.rpc("core.reload_script")
    assert "Script reload failed" in failed.value.error["message"]
    # SIGHUP: the same, logged; the router keeps answering with the old script.
    router._process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_until(lambda: "script reload failed, keeping the old one" in router.log_tail(),
               what="the failed SIGHUP reload in the log", detail=router.log_tail)
    assert router.running()
    assert answer_of(router) == "SIP/2.0 480 Version 480"
    script.write_text(VERSION.format(code=482))
    assert router.rpc("core.reload_script") == "Ok. Script reloaded."
    assert answer_of(router) == "SIP/2.0 482 Version 482"


def test_a_restarted_worker_runs_what_the_others_run_not_an_unloaded_edit(
        tmp_path: Path) -> None:
    """With workers the supervisor reads the script once: a worker restarted after an edit
    that no reload took runs the script in use (an edit that exits does not kill it)."""
    proxy = kamrouter_proxy(tmp_path, free_port(), script=VERSION.format(code=480),
                            sections={"core": {"workers": 2}}).start()
    try:
        (tmp_path / "routes.py").write_text(VERSION.format(code=481) + "import sys\nsys.exit()\n")
        victim = proxy.rpc("core.psx")[2]["PID"]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: proxy.rpc("core.psx")[2]["PID"] not in (0, victim),
                   what="worker 1 restarted", detail=proxy.log_tail)
        proxy.wait_workers_ready()
        assert {answer_of(proxy) for _ in range(8)} == {"SIP/2.0 480 Version 480"}
        with pytest.raises(RpcFailed) as failed:
            proxy.rpc("core.reload_script")
        assert "worker 0: " in failed.value.error["message"]
        assert "worker 1: " in failed.value.error["message"]
        (tmp_path / "routes.py").write_text(VERSION.format(code=482))
        assert proxy.rpc("core.reload_script") == "Ok. Script reloaded."
        assert {answer_of(proxy) for _ in range(8)} == {"SIP/2.0 482 Version 482"}
        assert "exited with status" not in proxy.log_tail()
    finally:
        proxy.stop()


def test_a_reload_reads_the_current_source_never_a_stale_pyc(tmp_path: Path,
                                                             monkeypatch) -> None:
    # Same size and same mtime: a .pyc check by mtime and size cannot see this edit.
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "routes.py"
    path.write_text("def request_route(msg):\n    return 'one'\n")
    stamp = path.stat().st_mtime_ns
    assert load_script(path).request_route(None) == "one"
    path.write_text("def request_route(msg):\n    return 'two'\n")
    os.utime(path, ns=(stamp, stamp))
    assert load_script(path).request_route(None) == "two"
    assert not (tmp_path / "__pycache__").exists()


@pytest.mark.parametrize("failure", ["raise SystemExit", "raise KeyboardInterrupt",
                                     "raise GeneratorExit"])
def test_load_script_turns_any_import_failure_into_a_script_error(tmp_path: Path,
                                                                  failure: str) -> None:
    path = tmp_path / "routes.py"
    path.write_text(f"def request_route(msg):\n    pass\n{failure}\n")
    with pytest.raises(ScriptError, match=r"routes.py:3: "):
        load_script(path)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hook_over_the_threshold_is_counted_and_logged_once_per_interval(caplog) -> None:
    clock = FakeClock()
    counter = Counter("core", "script_slow_hooks")
    timer = HookTimer(100, counter, clock)

    def request_route(msg: object) -> str:
        clock.now += msg  # type: ignore[operator]
        return "done"

    assert timer.call(request_route, 0.05) == "done"
    assert counter.value == 0 and not caplog.records
    timer.call(request_route, 0.25)
    timer.call(request_route, 0.25)
    assert counter.value == 2
    (record,) = caplog.records
    assert "request_route blocked the event loop for 250 ms" in record.getMessage()
    clock.now += 60
    timer.call(request_route, 0.3)
    assert counter.value == 3
    assert "1 more slow calls since the last report" in caplog.records[-1].getMessage()


def test_a_threshold_of_zero_turns_the_timing_off() -> None:
    counter = Counter("core", "script_slow_hooks")
    clock = FakeClock()
    timer = HookTimer(0, counter, clock)
    clock.now = 100.0
    assert timer.call(lambda m: m, 7) == 7 and counter.value == 0


def test_slow_hook_ms_has_a_range() -> None:
    from kamrouter.core.settings import RoutingConfig

    problems: list[str] = []
    build_section(RoutingConfig, {"slow_hook_ms": 600000}, "routing", problems)
    assert problems == ["routing.slow_hook_ms: must be 0 (off) or between 1 and 60000 ms, "
                        "got 600000"]


def test_a_blocking_hook_in_a_real_router_is_logged_and_counted(router: ProxyProcess) -> None:
    # time.sleep blocks the whole event loop: what the report is for.
    (router.workdir / "routes.py").write_text('''
import time
from kamrouter.script import sl

def request_route(msg):
    time.sleep(0.3)
    sl.send_reply(msg, 200, "Slow")
''')
    router.rpc("core.reload_script")
    assert answer_of(router) == "SIP/2.0 200 Slow"
    assert router.rpc("stats.get_statistics", "core:script_slow_hooks") == [
        "core:script_slow_hooks = 1"]
    wait_until(lambda: "request_route blocked the event loop for" in router.log_tail(),
               what="the slow-hook log line", detail=router.log_tail)
