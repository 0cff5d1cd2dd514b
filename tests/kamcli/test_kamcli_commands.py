"""Every kamcli command against a real kamrouter, in table and json output."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import Router

BIN = Path(sys.executable).parent


COMMANDS = [
    ["uptime"], ["version"], ["ps"], ["stats"], ["stats", "core:", "tmx"],
    ["stats", "core:rcv_requests", "shmem:real_used_size"], ["rpc", "system.listMethods"],
    ["rpc", "--list"], ["rpcmethods"], ["rpchelp", "core.psx"], ["rpc", "tm.stats"],
    ["srv", "sockets"], ["srv", "info"], ["srv", "shm", "k"], ["srv", "version"],
    ["srv", "debug"], ["moni", "--once"], ["plugins"],
    ["stats", "--watch", "0.1", "--count", "2", "core:"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_command_in_table_output(router: Router, args: list[str]) -> None:
    done = router.kamcli("-o", "table", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_command_in_json_output(router: Router, args: list[str]) -> None:
    done = router.kamcli("-o", "json", *args)
    assert done.returncode == 0, done.stderr
    if "--watch" in args:
        lines = done.stdout.splitlines()
        assert len(lines) == 2
        assert all("core:rcv_requests" in json.loads(line)["stats"] for line in lines)
    else:
        json.loads(done.stdout)
    assert done.stderr == ""


def test_json_is_the_default_when_piped_and_shapes_are_kamailios(router: Router) -> None:
    uptime = json.loads(router.kamcli("uptime").stdout)
    assert set(uptime) == {"now", "up_since", "uptime"}
    assert router.kamcli_json("rpc", "system.listMethods") == sorted(
        router.kamcli_json("rpcmethods"))
    assert router.kamcli_json("srv", "sockets")[0]["PORT"] == str(router.sip_port)
    assert router.kamcli_json("ps")[0]["IDX"] == 0


def test_stats_json_feeds_jq(router: Router) -> None:
    stats = router.kamcli("stats")
    jq = subprocess.run(["jq", '.["core:rcv_requests"]'], input=stats.stdout,
                        capture_output=True, text=True, check=True)
    assert jq.stdout.strip().isdigit()
    assert router.kamcli_json("stats", "tmx")["tmx:inuse_transactions"] == 0


def test_table_output_reads_well(router: Router) -> None:
    uptime = router.kamcli("-o", "table", "uptime").stdout
    assert "up since" in uptime and "uptime" in uptime
    stats = router.kamcli("-o", "table", "stats", "core:rcv_requests").stdout.split()
    assert stats[:3] == ["core", "value", "rcv_requests"]
    rpchelp = router.kamcli("-o", "table", "rpchelp", "core.shmmem").stdout.splitlines()
    assert rpchelp[0] == "core.shmmem([unit])" and rpchelp[1].startswith("Returns the memory")
    assert router.kamcli("-o", "table", "version").stdout.startswith("kamrouter ")
    assert "main process" in router.kamcli("-o", "table", "ps").stdout
    yaml_out = router.kamcli("-o", "yaml", "uptime").stdout
    assert yaml_out.startswith("now: ") and "uptime: " in yaml_out
    assert router.kamcli("-o", "raw", "version").stdout.startswith("kamrouter ")


def test_all_statistics_fit_in_columns_by_group(router: Router) -> None:
    """Every statistic is shown under its group's header, groups side by side (COLUMNS=120),
    so the whole set takes far fewer lines than there are statistics."""
    values = router.kamcli_json("stats")
    table = router.kamcli("-o", "table", "stats").stdout
    lines = table.splitlines()
    assert len(lines) < len(values) * 2 / 3
    words = table.split()
    groups = {key.split(":")[0] for key in values}
    assert all(re.search(rf"(^|  ){group} +value\b", table, re.M) for group in groups)
    assert all(key.split(":")[1] in words for key in values)
    assert max(len(line.rstrip()) for line in lines) <= 120
    watch = router.kamcli("-o", "table", "stats", "--watch", "0.1", "--count", "2").stdout
    assert watch.count("statistics, every 0.1s") == 2 and "/s" in watch


def test_moni_shows_statistics_the_router_has(router: Router) -> None:
    from kamcli.commands.moni import PANELS

    values = router.kamcli_json("stats")
    assert [name for names in PANELS.values() for name in names if name not in values] == []
    moni = router.kamcli("-o", "table", "moni", "--once").stdout
    assert router.stream_socket in moni and "Transactions" in moni


def test_one_megabyte_reply(router: Router) -> None:
    chunk = "x" * 100_000  # ten of them: arguments are limited to 128 KiB each
    done = router.kamcli("-o", "raw", "rpc", "core.echo", *[chunk] * 10)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 1_000_000 and json.loads(done.stdout) == [chunk] * 10


def test_params_are_typed(router: Router) -> None:
    echoed = router.kamcli_json("rpc", "core.echo", "1", "s:1", "i:2", "true", "[1]", 'a"b')
    assert echoed == ["1", "1", 2, "true", "[1]", 'a"b']
    echoed = router.kamcli_json("rpc", "--json", "core.echo", "1", "s:1", "i:2", "true", "null",
                                "1.5", "[1,2]", '{"a":1}', 'a"b', "NaN", "-3")
    assert echoed == [1, "1", 2, True, None, 1.5, [1, 2], {"a": 1}, 'a"b', "NaN", -3]
    dry = router.kamcli("rpc", "--dry-run", "htable.sets", "t", "s:1000", 'x "y"')
    assert json.loads(dry.stdout) == {"jsonrpc": "2.0", "method": "htable.sets",
                                      "params": ["t", "1000", 'x "y"'], "id": 1}
    named = router.kamcli_json("rpc", "--named", "system.methodHelp", "method=core.uptime")
    assert "uptime" in named.lower()


def test_debug_level_round_trip(router: Router) -> None:
    before = router.kamcli_json("srv", "debug")["debug"]
    changed = router.kamcli_json("srv", "debug", "3")
    assert changed["old"] == before and changed["new"] == 3
    assert router.kamcli_json("srv", "debug", "info")["new"] == 2


def test_router_error_exits_1(router: Router) -> None:
    done = router.kamcli("rpc", "no.such.method")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("Error: no.such.method: Method not found (code -32601); "
                           "'kamcli rpc --list' lists the methods\n")
    done = router.kamcli("rpc", "core.shmmem", "x")
    assert done.returncode == 1 and "unit" in done.stderr and "(code 400)" in done.stderr
    done = router.kamcli("rpc", "--json", "stats.fetch", "[1]")
    assert done.returncode == 1 and "selectors[0]" in done.stderr


def test_usage_errors_exit_2_with_one_line(router: Router) -> None:
    done = router.kamcli("stat")
    assert (done.returncode, done.stderr) == (
        2, "Error: no such command 'stat' (did you mean 'stats'?); see 'kamcli --help'\n")
    done = router.kamcli("stats", "--count", "2")
    assert (done.returncode, done.stderr) == (
        2, "Error: --count goes with --watch; see 'kamcli stats --help'\n")
    for args in (["-o", "xml", "uptime"], ["-s", "/x", "-u", "http://h/RPC", "uptime"],
                 ["rpc"], ["srv", "nope"], ["stats", "--bogus"]):
        done = router.kamcli(*args)
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.splitlines()) == 1 and "--help'" in done.stderr, done.stderr
    assert "not both" in router.kamcli("-s", "/x", "-u", "http://h/RPC", "uptime").stderr
    done = router.kamcli("stats", "-o", "json")
    assert (done.returncode, done.stderr) == (
        2, "Error: -o goes before the command: kamcli -o ... stats\n")


def test_unreachable_exits_3_naming_the_path(router: Router) -> None:
    missing = f"{router.home}/nowhere.sock"
    done = router.kamcli("-s", missing, "uptime")
    assert done.returncode == 3 and done.stdout == ""
    assert missing in done.stderr and "-s PATH" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = router.kamcli("uptime", env={"XDG_RUNTIME_DIR": str(router.home)})
    assert done.returncode == 3 and f"{router.home}/kamrouter/kamrouter_rpc.sock" in done.stderr
    port = router.http_port + 1 if router.http_port < 65535 else router.http_port - 1
    done = router.kamcli("-u", f"http://127.0.0.1:{port}/RPC", "uptime")
    assert done.returncode == 3


@pytest.mark.parametrize("how", ["socket", "url"])
@pytest.mark.parametrize("transport", ["stream", "dgram", "fifo", "http"])
def test_every_transport(router: Router, transport: str, how: str) -> None:
    path = {"stream": router.stream_socket, "dgram": router.dgram_socket,
            "fifo": router.fifo}.get(transport)
    if transport == "http":
        option = ["-u", f"http://127.0.0.1:{router.http_port}/RPC"]
    elif how == "socket":
        option = ["-s", path]  # the transport is detected from the file
    else:
        option = ["-u", f"{'unix' if transport == 'stream' else transport}:{path}"]
    config = router.home / "fifo.toml"
    config.write_text(f'fifo_reply_dir = "{router.fifo_reply_dir}"\n')
    for args in (["uptime"], ["stats", "core:"], ["rpc", "system.listMethods"]):
        done = router.kamcli("-c", str(config), *option, "-o", "json", *args)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)
    assert os.listdir(router.fifo_reply_dir) == []  # reply FIFOs are always removed


def test_http_metrics(router: Router) -> None:
    metrics = httpx.get(f"http://127.0.0.1:{router.http_port}/metrics").text
    assert "# TYPE kamrouter_core_rcv_requests_total counter" in metrics


def test_environment_and_config_file(router: Router, tmp_path) -> None:
    env = {"KAMCLI_OUTPUT": "yaml", "KAMCLI_SOCKET": router.stream_socket,
           "XDG_RUNTIME_DIR": str(tmp_path)}
    assert router.kamcli("uptime", env=env).stdout.startswith("now: ")
    (tmp_path / "kamcli.toml").write_text(
        f'socket = "{router.dgram_socket}"\noutput = "raw"\n[aliases]\nv = "rpc core.version"\n')
    done = router.kamcli("v", cwd=tmp_path, env={"XDG_RUNTIME_DIR": str(tmp_path)})
    assert done.returncode == 0 and done.stdout.startswith("kamrouter "), done.stderr
    # The command line beats the environment, which beats the file.
    done = router.kamcli("-o", "json", "version", cwd=tmp_path, env={"KAMCLI_OUTPUT": "yaml"})
    assert json.loads(done.stdout).startswith("kamrouter")
    (tmp_path / "bad.toml").write_text('sockett = "/x"\ntimeout = "soon"\n')
    done = router.kamcli("-c", str(tmp_path / "bad.toml"), "uptime")
    assert done.returncode == 2
    assert "unknown key 'sockett' (did you mean 'socket'?)" in done.stderr
    assert "timeout: expected a number" in done.stderr


def test_timeout_exits_3(router: Router, tmp_path) -> None:
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(tmp_path / "silent.sock"))
    silent.listen()
    try:
        done = router.kamcli("--timeout", "0.2", "-s", str(tmp_path / "silent.sock"), "uptime")
    finally:
        silent.close()
    assert done.returncode == 3 and "no reply within 0.2s" in done.stderr


def test_version_option(router: Router) -> None:
    assert router.kamcli("--version").stdout.startswith("kamcli, version ")


def test_ctrl_c_ends_a_watch_cleanly(router: Router) -> None:
    watch = subprocess.Popen([str(BIN / "kamcli"), "stats", "--watch", "0.1", "core:"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=router.env, cwd=router.home)
    assert watch.stdout is not None
    assert "core:rcv_requests" in watch.stdout.readline()
    watch.send_signal(signal.SIGINT)
    assert watch.wait(30) == 0


def test_no_arguments_shows_help(router: Router) -> None:
    done = router.kamcli()
    assert done.returncode == 0 and "Commands:" in done.stdout


def test_stats_that_match_nothing_fail(router: Router) -> None:
    done = router.kamcli("stats", "nosuch")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "Error: no statistics match nosuch; 'kamcli stats' lists them all\n"


def test_rpc_help_tells_the_typing_rule(router: Router) -> None:
    text = " ".join(router.kamcli("rpc", "--help").stdout.split())
    assert 'PARAMS are strings, as with the reference kamcli: 1000 is the string "1000"' in text
    assert "i:N sends the integer N" in text and "--json" in text


def test_config_show_and_paths(router: Router, tmp_path: Path) -> None:
    shown = router.kamcli_json("config", "show")
    assert shown["config_file"] == "(none)" and shown["target"] == router.stream_socket
    assert shown["transport"] == "Unix stream socket"
    config = tmp_path / "kamcli.toml"
    config.write_text(f'url = "dgram:{router.dgram_socket}"\ntimeout = 2\n')
    shown = router.kamcli_json("-c", str(config), "config", "show")
    assert shown["config_file"] == str(config) and shown["timeout"] == 2.0
    assert shown["transport"] == "Unix datagram socket"
    shown = router.kamcli_json("-s", "/nonexistent/kamrouter.sock", "config", "show")
    assert shown["transport"].startswith("unreachable: no control socket at /nonexistent/")
    paths = router.kamcli_json("-c", str(config), "config", "paths")
    assert paths[0] == {"what": "config file (-c)", "path": str(config), "state": "in use"}
    assert {"what": "target", "path": f"dgram:{router.dgram_socket}",
            "state": "Unix datagram socket"} in paths


def test_table_cells_are_not_highlighted(router: Router) -> None:
    # Rich's highlighter coloured numbers inside dates; data cells stay plain text.
    done = router.kamcli("-o", "table", "uptime", env={"FORCE_COLOR": "1", "TERM": "xterm"})
    assert done.returncode == 0 and re.search(r"\d{2}:\d{2}", done.stdout)
    cells = [line for line in done.stdout.splitlines() if re.search(r"\d{2}:\d{2}", line)]
    assert cells and not any("\x1b[" in line for line in cells), cells
