"""kamcli against a real Kamailio's jsonrpcs datagram socket (skipped without kamailio)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.wait import wait_until

KAMAILIO = shutil.which("kamailio") or ("/usr/sbin/kamailio"
                                        if os.path.exists("/usr/sbin/kamailio") else None)
pytestmark = pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed")
CFG = Path(__file__).with_name("kamailio.cfg")
KAMCLI = str(Path(sys.executable).parent / "kamcli")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def kamailio_socket() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="kcli-kam-"))
    socket_path = str(workdir / "kamailio_rpc.sock")
    argv = [KAMAILIO, "-f", str(CFG), "-DD", "-E", "-Y", str(workdir), "-w", str(workdir),
            "-m", "16", "-M", "4", "-l", f"udp:127.0.0.1:{free_udp_port()}",
            "-A", f"RPC_SOCKET={json.dumps(socket_path)}"]
    log = workdir / "kamailio.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_until(lambda: process.poll() is not None or subprocess.run(
            [KAMCLI, "-s", socket_path, "--timeout", "1", "version"],
            capture_output=True).returncode == 0, f"kamailio answering on {socket_path}",
            interval=0.1, detail=log.read_text)
        if process.poll() is not None:
            pytest.fail(f"kamailio exited:\n{log.read_text()}")
        yield socket_path
    finally:
        process.terminate()  # the main process stops its children
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


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
