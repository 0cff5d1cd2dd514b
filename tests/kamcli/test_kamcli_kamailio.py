"""kamcli against a real Kamailio 5.6: its jsonrpcs datagram socket and FIFO."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.ports import free_port
from support.wait import wait_until

KAMAILIO = shutil.which("kamailio") or ("/usr/sbin/kamailio"
                                        if os.path.exists("/usr/sbin/kamailio") else None)
pytestmark = pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed")
CFG = Path(__file__).with_name("kamailio.cfg")
KAMCLI = str(Path(sys.executable).parent / "kamcli")


@dataclass
class Kamailio:
    socket: str         # jsonrpcs dgram_socket
    fifo: str           # jsonrpcs fifo_name
    reply_dir: str      # jsonrpcs fifo_reply_dir
    sip_port: int       # udp and tcp on 127.0.0.1
    log: Path


@pytest.fixture(scope="module")
def kamailio() -> Iterator[Kamailio]:
    workdir = Path(tempfile.mkdtemp(prefix="kcli-kam-"))
    replies = workdir / "replies"
    replies.mkdir()
    port = free_port()
    started = Kamailio(str(workdir / "kamailio_rpc.sock"), str(workdir / "kamailio_rpc.fifo"),
                       f"{replies}/", port, workdir / "kamailio.log")
    argv = [KAMAILIO, "-f", str(CFG), "-DD", "-E", "-Y", str(workdir), "-w", str(workdir),
            "-m", "16", "-M", "4", "-l", f"udp:127.0.0.1:{port}", "-l", f"tcp:127.0.0.1:{port}",
            "-A", f"RPC_SOCKET={json.dumps(started.socket)}",
            "-A", f"RPC_FIFO={json.dumps(started.fifo)}",
            "-A", f"RPC_REPLY_DIR={json.dumps(started.reply_dir)}"]
    with open(started.log, "wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_until(lambda: process.poll() is not None or subprocess.run(
            [KAMCLI, "-s", started.socket, "--timeout", "1", "version"],
            capture_output=True, timeout=30).returncode == 0,
            f"kamailio answering on {started.socket}", interval=0.1,
            detail=started.log.read_text)
        if process.poll() is not None:
            pytest.fail(f"kamailio exited:\n{started.log.read_text()}")
        yield started
    finally:
        process.terminate()  # the main process stops its children
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def kamailio_socket(kamailio: Kamailio) -> str:
    return kamailio.socket


def kamcli(socket_path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KAMCLI, "-s", socket_path, *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("output", ["json", "table"])
def test_uptime_stats_and_methods(kamailio_socket: str, output: str) -> None:
    for args in (["uptime"], ["stats"], ["stats", "tmx"], ["rpc", "system.listMethods"]):
        done = kamcli(kamailio_socket, "-o", output, *args)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() and done.stderr == ""


def test_results_have_kamailio_shapes(kamailio_socket: str) -> None:
    uptime = json.loads(kamcli(kamailio_socket, "-o", "json", "uptime").stdout)
    assert set(uptime) == {"now", "up_since", "uptime"}
    stats = json.loads(kamcli(kamailio_socket, "-o", "json", "stats", "tmx").stdout)
    assert stats["tmx:UAS_transactions"] == 0  # Kamailio's "0" strings become numbers
    methods = json.loads(kamcli(kamailio_socket, "-o", "json", "rpc",
                                "system.listMethods").stdout)
    assert "core.uptime" in methods and "stats.fetch" in methods


def test_kamailio_errors_exit_1(kamailio_socket: str) -> None:
    done = kamcli(kamailio_socket, "rpc", "no.such.method")
    assert done.returncode == 1 and "Method Not Found (code 500)" in done.stderr


def test_sipcheck_plugin_with_kamailio(kamailio_socket: str) -> None:
    done = kamcli(kamailio_socket, "-o", "json", "sipcheck", "-c", "1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["probes"][0]["status"] == 200


def test_address_and_pike_commands_read_kamailio(kamailio_socket: str) -> None:
    """kamcli address/pike speak Kamailio's permissions.* and pike.list shapes."""
    listed = kamcli(kamailio_socket, "-o", "json", "address", "list")
    assert listed.returncode == 0, listed.stderr
    assert [(r["group"], r["address"], r["mask"], r["port"], r["tag"], r["kind"])
            for r in json.loads(listed.stdout)] == [
        (1, "127.0.0.1", 32, 0, "lab", "address"), (2, "192.0.2.0", 24, 5060, "carriers",
                                                    "subnet")]
    assert kamcli(kamailio_socket, "address", "reload").stderr.strip() == "Reload OK"
    pike = kamcli(kamailio_socket, "-o", "json", "pike", "list", "--all")
    assert pike.returncode == 0 and json.loads(pike.stdout) == [], pike.stderr


def test_fifo_transport_reaches_kamailio(kamailio: Kamailio, tmp_path: Path) -> None:
    # Kamailio refuses reply FIFO names with a dot ("Forbidden reply fifo filename").
    config = tmp_path / "kamcli.toml"
    config.write_text(f'fifo_reply_dir = "{kamailio.reply_dir}"\n')
    done = subprocess.run([KAMCLI, "-c", str(config), "-u", f"fifo:{kamailio.fifo}",
                           "--timeout", "5", "-o", "json", "uptime"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == {"now", "up_since", "uptime"}


def test_fifo_reply_that_never_comes_says_what_to_check(kamailio: Kamailio,
                                                        tmp_path: Path) -> None:
    # kamcli's reply FIFO is in a directory Kamailio does not write to: no reply can come.
    config = tmp_path / "kamcli.toml"
    config.write_text(f'fifo_reply_dir = "{tmp_path}"\n')
    done = subprocess.run([KAMCLI, "-c", str(config), "-u", f"fifo:{kamailio.fifo}",
                           "--timeout", "1", "uptime"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "fifo_reply_dir" in done.stderr
    assert str(tmp_path) in done.stderr


def test_numbers_are_strings_unless_typed(kamailio_socket: str) -> None:
    # The reference kamcli's rule: htable.sets with the key "1000" must reach Kamailio as a
    # string (typed as JSON it was an integer and Kamailio said "Not enough parameters").
    done = kamcli(kamailio_socket, "rpc", "htable.sets", "users", "1000", "carol")
    assert done.returncode == 0, done.stderr
    done = kamcli(kamailio_socket, "rpc", "htable.seti", "users", "age", "i:42")
    assert done.returncode == 0, done.stderr
    item = json.loads(kamcli(kamailio_socket, "-o", "json", "rpc", "htable.get", "users",
                             "1000").stdout)
    assert item["item"]["value"] == "carol"
    item = json.loads(kamcli(kamailio_socket, "-o", "json", "rpc", "htable.get", "users",
                             "age").stdout)
    assert item["item"]["value"] == 42


def test_htable_dump_match_is_filtered_when_kamailio_ignores_it(kamailio_socket: str,
                                                               tmp_path: Path) -> None:
    for key in ("gw-a", "gw-b", "other"):
        assert kamcli(kamailio_socket, "htable", "sets", "users", key, "x").returncode == 0
    done = kamcli(kamailio_socket, "-o", "json", "htable", "dump", "users", "-m", "%~gw-")
    assert done.returncode == 0, done.stderr
    assert sorted(row["key"] for row in json.loads(done.stdout)) == ["gw-a", "gw-b"]
    out = tmp_path / "gw.csv"
    done = kamcli(kamailio_socket, "htable", "export", "users", str(out), "-m", "~~^gw-a$")
    assert done.returncode == 0, done.stderr
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == ["gw-a"]


def test_tcp_and_srv_parity_commands(kamailio: Kamailio) -> None:
    info = json.loads(kamcli(kamailio.socket, "-o", "json", "tcp", "info").stdout)
    assert {"readers", "max_connections", "opened_connections"} <= set(info)
    assert isinstance(json.loads(kamcli(kamailio.socket, "-o", "json", "tcp", "list").stdout),
                      list)
    modules = json.loads(kamcli(kamailio.socket, "-o", "json", "srv", "modules").stdout)
    assert "htable" in modules and "jsonrpcs" in modules
    aliases = json.loads(kamcli(kamailio.socket, "-o", "json", "srv", "aliases").stdout)
    assert {"PROTO": "udp", "ADDR": "edge.kamcli.invalid", "PORT": 5070} in aliases
    for args in (["tcp", "info"], ["tcp", "list"], ["srv", "modules"], ["srv", "aliases"]):
        done = kamcli(kamailio.socket, "-o", "table", *args)
        assert done.returncode == 0 and done.stderr == "", done.stderr
