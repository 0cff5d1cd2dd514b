"""Config validation that matches run time: ranges, listen hosts, and ``--check`` naming every
problem of a file in one run."""
from __future__ import annotations

import subprocess
from pathlib import Path

from kamrouter.config import Range, build_section
from kamrouter.core.settings import CoreConfig, TmConfig
from support.proxy import kamrouter_binary


def problems_of(cls: type, raw: dict, where: str) -> list[str]:
    problems: list[str] = []
    build_section(cls, raw, where, problems)
    return problems


def check(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "kamrouter.toml"
    config.write_text(toml)
    return subprocess.run([kamrouter_binary(), "--check", "-c", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_range_messages_name_key_bounds_unit_and_value() -> None:
    assert Range(50, 60000, "ms").problem("t1", 0) == "t1: must be between 50 and 60000 ms, got 0"
    assert Range(0.1, 3600, "s", off=0).problem("x", 0.01) == (
        "x: must be 0 (off) or between 0.1 and 3600 s, got 0.01")
    assert Range(0.1, 3600, "s", off=0).problem("x", 0) is None
    assert Range(1, 1 << 20).problem("n", None) is None


def test_tm_timers_have_ranges_and_t1_may_not_exceed_t2() -> None:
    # t1 = 0 once turned one INVITE into 188,629 retransmissions in 3 s.
    assert problems_of(TmConfig, {"t1": 0}, "tm") == [
        "tm.t1: must be between 50 and 60000 ms, got 0"]
    assert problems_of(TmConfig, {"t1": 5000, "t2": 4000}, "tm") == [
        "tm.t2: must be at least t1 (5000 ms), got 4000"]
    assert problems_of(TmConfig, {"fr_timer": 0, "max_transactions": 0}, "tm") == [
        "tm.fr_timer: must be between 100 and 3600000 ms, got 0",
        "tm.max_transactions: must be between 1 and 10000000, got 0"]


def test_listen_hosts_are_checked_by_key() -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this host: only a bind to port 0 is tried.
    problems = problems_of(CoreConfig, {"listen": ["udp:127.0.0.1:5060", "tcp:1.2.3:5060",
                                                   "udp:192.0.2.1:5060", "udp:a..b"]}, "core")
    assert problems[0] == ("core.listen[1]: 'tcp:1.2.3:5060': host '1.2.3' is neither an IP "
                           "address nor a host name")
    assert problems[1].startswith("core.listen[2]: 'udp:192.0.2.1:5060': '192.0.2.1' is not an "
                                  "address of this host")
    assert problems[2].startswith("core.listen[3]: 'udp:a..b': host 'a..b' is neither")
    assert len(problems) == 3


def test_check_reports_every_problem_of_a_file_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "dispatcher.list").write_text("1 sip:127.0.0.1:5070\n1 not-a-uri\n")
    (tmp_path / "routes.py").write_text("from kamrouter.script import dispatcher\n"
                                        "def request_route(msg):\n    return (\n")
    result = check(tmp_path, """
[core]
listen = ["udp:192.0.2.1:5060"]
[tm]
t1 = 0
[tcp]
connect_timeout = 0
[routing]
script = "routes.py"
slow_hook_ms = -1
[dispatcher]
list_file = "dispatcher.list"
ping_interval = 0.001
[[htable]]
name = "bans"
size = 40
[[htable]]
name = "bans"
[api]
transport = "http"
url = "http://127.0.0.1:9/"
timeout = 0
[http_client]
keepalive_expiry = 0
""")
    assert result.returncode == 1
    for expected in ("core.listen[0]: 'udp:192.0.2.1:5060': '192.0.2.1' is not an address",
                     "tm.t1: must be between 50 and 60000 ms, got 0",
                     "tcp.connect_timeout: must be between 0.01 and 300 s, got 0",
                     "routing.slow_hook_ms: must be 0 (off) or between 1 and 60000 ms, got -1",
                     "dispatcher.ping_interval: must be 0 (off) or between 0.1 and 86400 s",
                     "dispatcher.list:2", "htable[0].size: must be between 2 and 31",
                     "htable[1].name: 'bans' is defined twice",
                     "api.timeout: must be between 0.01 and 300 s, got 0",
                     "http_client.keepalive_expiry: must be between 0.1 and 3600 s, got 0",
                     "routing.script:", "routes.py:3"):
        assert expected in result.stderr, (expected, result.stderr)
    assert len(result.stderr.splitlines()) == 11, result.stderr  # nothing twice


def test_a_broken_module_does_not_hide_the_scripts_problems(tmp_path: Path) -> None:
    # The script imports the API of a module whose config failed: still checked, by a
    # stand-in, so the one run names the script's own error too.
    (tmp_path / "routes.py").write_text("from kamrouter.script import dispatcher\n"
                                        "undefined_name\n")
    result = check(tmp_path, '[routing]\nscript = "routes.py"\n'
                             '[dispatcher]\nlist_file = "missing.list"\n')
    assert "missing.list: cannot read" in result.stderr
    assert "routes.py:2: NameError" in result.stderr


def test_an_unresolvable_listen_host_is_named_by_key(monkeypatch) -> None:
    # No DNS query leaves the machine: the resolver is replaced by one that knows no name.
    import socket

    from kamrouter.core import settings

    def no_such_name(host: str, *args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(settings.socket, "getaddrinfo", no_such_name)
    assert problems_of(CoreConfig, {"listen": ["udp:sbc.example.test:5060"]}, "core") == [
        "core.listen[0]: 'udp:sbc.example.test:5060': host 'sbc.example.test' does not "
        "resolve ([Errno -2] Name or service not known)"]


def test_websocket_section_is_checked_by_key(tmp_path: Path) -> None:
    from kamrouter.transport.ws import WebsocketConfig

    assert problems_of(WebsocketConfig, {"allowed_origins": ["phone.example"],
                                         "max_message_size": 100, "keepalive_interval": -1},
                       "websocket") == [
        "websocket.max_message_size: must be between 512 and 1048576 bytes, got 100",
        "websocket.keepalive_interval: must be between 0 and 3600 s, got -1",
        "websocket.allowed_origins[0]: expected scheme://host[:port], got 'phone.example'"]
    result = check(tmp_path, '[core]\nlisten = ["wss:127.0.0.1:8443"]\n')
    assert result.returncode == 1 and "wss: listener needs a [[tls.server]]" in result.stderr
