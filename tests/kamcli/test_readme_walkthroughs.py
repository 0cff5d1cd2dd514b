"""The README's walkthroughs (and the one in etc/banlist.toml), pasted line by line into an
interactive bash on a terminal, as a user would: job control on, so a background sipp that
touches the terminal is stopped as it was for users (the README's first call hung so).

Each ```sh block of README.md is walked here or named in NOT_WALKED with the reason. The
walks run in a scratch directory holding copies of ``etc/`` and ``examples/`` and links to
``.venv`` and ``tests/``; the only thing replaced is port numbers (README's 5060, 5070, ...
become free ports, in the pasted lines and in the copied files), so that the test does not
collide with anything else on the machine. The router the README starts with ``make run``
in another terminal is ``.venv/bin/kamrouter`` (what ``make run`` runs) on those ports. A
live view (``kamcli moni``) is ended with Ctrl-C and ``kamcli shell`` runs ``uptime`` and
is left with Ctrl-D, as a user would; every line must then end with status 0. Traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import rpc_socket_accepts
from support.ports import free_port, tcp_listening, udp_bound

REPO = Path(__file__).resolve().parents[2]
#: Ports the README and example configs use; each walk gets free ones instead.
PORTS = (5060, 5061, 5065, 5070, 5071, 5072, 5073, 5080, 5090, 5100, 6379, 8080, 8090, 8443)
#: ```sh blocks not walked, by their first line, and why.
NOT_WALKED = {
    "make run": "the two set-up commands: the walks start the router as `make run` does",
    ".venv/bin/python benchmarks/": "benchmarks: minutes of load, measured by benchmarks/",
}
LINE_TIMEOUT = 120.0  # seconds one pasted line may take on a loaded machine
pytestmark = pytest.mark.skipif(shutil.which("sipp") is None,
                                reason="sipp is not installed (Debian package sip-tester)")


def sh_blocks(text: str) -> list[tuple[str, list[str]]]:
    """``(section heading, lines)`` of every ```sh block, in order."""
    blocks, heading = [], ""
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.strip() == "```sh":
            body = []
            for inner in lines:
                if inner.strip() == "```":
                    break
                body.append(inner)
            blocks.append((heading, body))
    return blocks


def config_walkthrough(path: Path) -> list[str]:
    """The command lines of a config file's header comment (``#   command``)."""
    commands = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   "):
            commands.append(line[4:])
    return commands


@dataclass
class Scratch:
    root: Path
    env: dict[str, str]
    ports: dict[int, int]

    def substitute(self, text: str) -> str:
        return re.sub(r"\b(" + "|".join(map(str, self.ports)) + r")\b",
                      lambda m: str(self.ports[int(m.group(1))]), text)

    @property
    def control_socket(self) -> str:
        return str(self.root / "run" / "kamrouter" / "kamrouter_rpc.sock")


@pytest.fixture
def scratch() -> Iterator[Scratch]:
    root = Path(tempfile.mkdtemp(prefix="kreadme-"))
    ports = {port: free_port() for port in PORTS}
    for name in ("home", "run"):
        (root / name).mkdir(mode=0o700)
    for link in (".venv", "tests"):
        (root / link).symlink_to(REPO / link)
    made = Scratch(root, {}, ports)
    for tree in ("etc", "examples"):
        shutil.copytree(REPO / tree, root / tree, ignore=shutil.ignore_patterns(
            "__pycache__", "*.sqlite"))
        for path in (root / tree).rglob("*"):
            if path.suffix in (".toml", ".json", ".list", ".py", ".md", ".csv", ".conf"):
                path.write_text(made.substitute(path.read_text()))
    made.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(root / "home"),
                "XDG_RUNTIME_DIR": str(root / "run"), "XDG_CONFIG_HOME": str(root / "home"),
                "XDG_STATE_HOME": str(root / "home"), "LANG": "C.UTF-8", "TERM": "xterm",
                "PS1": "$ ", "PROMPT_COMMAND": 'echo "@@status=$?@@"',
                # this pty does not answer cursor position requests as a terminal would
                "PROMPT_TOOLKIT_NO_CPR": "1"}
    yield made
    shutil.rmtree(root, ignore_errors=True)


class Terminal:
    """An interactive bash on a pseudo-terminal; lines are typed one at a time."""

    def __init__(self, scratch: Scratch) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a login-less interactive shell in the scratch dir
            os.chdir(scratch.root)
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], scratch.env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        self.output = ""
        self._status_seen = 0
        self.wait_prompt()

    def read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return
            try:
                self.output += os.read(self.fd, 65536).decode(errors="replace")
            except OSError:  # the shell is gone
                return

    def read_until(self, text: str, start: int, timeout: float = LINE_TIMEOUT) -> bool:
        end = time.monotonic() + timeout
        while text not in self.output[start:]:
            if time.monotonic() > end:
                return False
            self.read(0.2)
        return True

    def wait_prompt(self, timeout: float = LINE_TIMEOUT) -> int:
        """The status of the line just run (from PROMPT_COMMAND's marker)."""
        end = time.monotonic() + timeout
        while len(found := re.findall(r"@@status=(\d+)@@", self.output)) <= self._status_seen:
            if time.monotonic() > end:
                raise AssertionError(f"no prompt within {timeout:g}s:\n{self.output[-3000:]}")
            self.read(0.2)
        self._status_seen = len(found)
        return int(found[-1])

    def type(self, text: str) -> int:
        start = len(self.output)
        os.write(self.fd, text.encode())
        return start

    def close(self) -> None:
        self.type("kill $(jobs -p) 2>/dev/null; exit\n")
        self.read(2)
        os.close(self.fd)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def paste(terminal: Terminal, scratch: Scratch, line: str) -> str:
    """Type one walkthrough line and wait for it to end; returns what it printed (not the
    echoed line)."""
    line = scratch.substitute(line)
    words = line.split("#")[0].split()
    start = terminal.type(line + "\n")
    if words[:2] == ["kamcli", "moni"]:  # a live view: watch it refresh, then Ctrl-C
        assert terminal.read_until("Transactions", start), terminal.output[start:]
        terminal.type("\x03")
    elif words[:2] == ["kamcli", "shell"]:  # interactive: run a command, then Ctrl-D
        assert terminal.read_until("kamcli>", start), terminal.output[start:]
        shown = terminal.type("uptime\r")
        assert terminal.read_until("up since", shown), terminal.output[shown:]
        assert terminal.read_until("kamcli>", shown + terminal.output[shown:].index(
            "up since")), terminal.output[shown:]
        terminal.type("\x04")
    status = terminal.wait_prompt()
    # What the line printed, without the terminal's echo of the line itself (whose comment
    # often names the expected output).
    printed = terminal.output[start:].partition("\n")[2]
    assert status == 0, f"{line!r} ended with status {status}:\n{printed[-3000:]}"
    if line.rstrip().split("#")[0].rstrip().endswith("&"):
        wait_until_serving(scratch, line)
    return printed


def wait_until_serving(scratch: Scratch, line: str) -> None:
    """What a user waits for before the next line: the server just started is up."""
    ports = [int(p) for p in re.findall(r"\b\d{4,5}\b", line) if int(p) in
             scratch.ports.values()]
    deadline = time.monotonic() + LINE_TIMEOUT
    while not all(udp_bound(p) or tcp_listening(p) for p in ports) or (
            "kamrouter" in line and not rpc_socket_accepts(control_socket_of(scratch, line))):
        assert time.monotonic() < deadline, f"{line!r} did not come up"
        time.sleep(0.1)


def control_socket_of(scratch: Scratch, line: str) -> str:
    """The control socket of the router ``line`` starts: in its config's ``[rpc] run_dir``
    (relative to the walk's directory, where it starts), else in the default run dir."""
    config = re.search(r"-c (\S+\.toml)", line)
    if config:
        rpc = tomllib.loads((scratch.root / config[1]).read_text()).get("rpc", {})
        if "run_dir" in rpc:
            return str(scratch.root / rpc["run_dir"] / "kamrouter_rpc.sock")
    return scratch.control_socket


def start_router(scratch: Scratch, args: list[str]) -> subprocess.Popen[bytes]:
    """The router of "terminal 1" (``make run`` / ``kamrouter -c FILE``)."""
    log = open(scratch.root / "router.log", "ab")
    router = subprocess.Popen([str(REPO / ".venv/bin/kamrouter"), *args], cwd=scratch.root,
                              env=scratch.env, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + LINE_TIMEOUT
    while not rpc_socket_accepts(scratch.control_socket):
        assert router.poll() is None and time.monotonic() < deadline, \
            (scratch.root / "router.log").read_text()
        time.sleep(0.1)
    return router


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def walk(scratch: Scratch, lines: list[str]) -> list[str]:
    terminal = Terminal(scratch)
    try:
        return [paste(terminal, scratch, line) for line in lines if line.strip()]
    finally:
        terminal.close()


README_BLOCKS = sh_blocks((REPO / "README.md").read_text())


def walkthrough(heading: str) -> list[str]:
    found = [lines for section, lines in README_BLOCKS if section == heading]
    assert len(found) == 1, f"README.md: one ```sh block under {heading!r} expected"
    return found[0]


def test_every_readme_sh_block_is_walked_or_excused() -> None:
    walked = ("A first call and a first look", "Write your routing API in 20 lines",
              "Not an open relay: who may send where", "Control plane",
              "A registrar in five minutes", "Route by tables", "TLS edge proxy",
              "WebSocket for browsers (WebRTC signalling)", "Several nodes")
    for heading, lines in README_BLOCKS:
        if heading in walked:
            continue
        first = next(line for line in lines if line.strip())
        assert any(first.startswith(prefix) for prefix in NOT_WALKED), \
            f"README.md, {heading!r}: a ```sh block neither walked nor excused: {first!r}"


def listen_on(scratch: Scratch) -> list[str]:
    """``-l`` options moving the default listeners (127.0.0.1:5060) to the walk's port."""
    port = scratch.ports[5060]
    return ["-l", f"udp:127.0.0.1:{port}", "-l", f"tcp:127.0.0.1:{port}"]


def test_first_call(scratch: Scratch) -> None:
    router = start_router(scratch, listen_on(scratch))
    try:
        printed = walk(scratch, walkthrough("A first call and a first look"))
    finally:
        stop(router)
    by_command = {line.split("#")[0].strip(): out for line, out in
                  zip([text for text in walkthrough("A first call and a first look") if text.strip()],
                      printed)}
    assert '"uptime"' in by_command["kamcli -o json uptime"]
    assert "tmx" in by_command["kamcli stats"]


def activated(scratch: Scratch) -> None:
    """PATH as after the first walkthrough's ``. .venv/bin/activate``: ``kamcli`` is ours,
    not the Debian one in /usr/bin."""
    scratch.env["PATH"] = f"{scratch.root / '.venv/bin'}:{scratch.env['PATH']}"


def test_relay_policy_commands(scratch: Scratch) -> None:
    activated(scratch)
    router = start_router(scratch, listen_on(scratch))  # make run's embedded config
    try:
        printed = walk(scratch, walkthrough("Not an open relay: who may send where"))
    finally:
        stop(router)
    assert "192.0.2.10" in printed[1]


def test_api_routing(scratch: Scratch) -> None:
    printed = walk(scratch, walkthrough("Write your routing API in 20 lines"))
    assert any("+4930123: serial" in out for out in printed), printed


def test_http_rpc_with_credentials(scratch: Scratch) -> None:
    activated(scratch)
    printed = walk(scratch, walkthrough("Control plane"))
    assert "up since" in printed[2].lower(), printed[2]
    assert "401" in printed[3], printed[3]


def test_registrar_walkthrough(scratch: Scratch) -> None:
    lines = walkthrough("A registrar in five minutes")
    assert lines[0] == ".venv/bin/kamrouter -c etc/registrar.toml"  # its own terminal
    router = start_router(scratch, ["-c", "etc/registrar.toml"])
    try:
        printed = walk(scratch, lines[1:])
    finally:
        stop(router)
    assert "sip:bob@" in printed[5] and "sip:alice@" in printed[5], printed[5]
    assert "Successful call        |        0                  |        1" in printed[7], printed[7]


def test_several_nodes_walkthrough(scratch: Scratch) -> None:
    lines = [line for line in walkthrough("Several nodes") if line.strip()]
    printed = dict(zip((line.split("#")[0].strip() for line in lines),
                       walk(scratch, lines)))
    shown = printed["kamcli -u http://127.0.0.3:8090/RPC ul show bob"]
    assert f"sip:bob@127.0.0.1:{scratch.ports[5071]}" in shown, shown
    call = printed[next(line for line in printed if line.startswith("sipp -sf etc/sipp/caller"))]
    assert "Successful call        |        0                  |        1" in call, call
    assert "fraud" in printed["kamcli -u http://127.0.0.2:8090/RPC htable get bans 192.0.2.7"]


def test_route_by_tables_walkthrough(scratch: Scratch) -> None:
    printed = walk(scratch, walkthrough("Route by tables"))
    assert "Successful call" in printed[2], printed[2]
    assert "+49301234567" in printed[3], printed[3]
    assert "127.0.0.1:" in printed[5], printed[5]


def test_tls_edge_proxy_walkthrough(scratch: Scratch) -> None:
    printed = walk(scratch, walkthrough("TLS edge proxy"))
    assert "Successful call        |        0                  |        1" in printed[4], \
        printed[4]
    assert re.search(r"\nhandshakes +1\b", printed[5]), printed[5]


def test_banlist_config_walkthrough(scratch: Scratch) -> None:
    lines = config_walkthrough(REPO / "etc/banlist.toml")
    assert lines[0] == "kamrouter -c etc/banlist.toml"  # terminal 1
    activated(scratch)
    router = start_router(scratch, ["-c", "etc/banlist.toml", *listen_on(scratch)])
    try:
        printed = walk(scratch, lines[1:])
    finally:
        stop(router)
    assert "htable bans" in printed[-2]


def test_webrtc_walkthrough(scratch: Scratch) -> None:
    printed = walk(scratch, walkthrough("WebSocket for browsers (WebRTC signalling)"))
    assert "Successful call        |        0                  |        1" in printed[4], \
        printed[4]  # bob registered
    call = printed[6]
    assert "REGISTER: 200 OK" in call and "BYE: 200 OK" in call, call
    assert ".invalid;transport=ws" in printed[7] and "transport=wss" in printed[7], printed[7]

