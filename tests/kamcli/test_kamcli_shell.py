"""``kamcli shell`` driven for real: prompt_toolkit fed through a pipe, and stdin scripts."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from kamcli.commands.shell import Shell, completions, interactive
from kamcli.context import Context
from kamcli.main import cli
from kamcli.options import resolve_options

from support.wait import wait_until

if TYPE_CHECKING:
    from conftest import Router


@pytest.fixture
def shell(router: Router, tmp_path, monkeypatch) -> Iterator[Shell]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    root = cli.make_context("kamcli", ["-s", router.stream_socket, "-o", "json"])
    root.obj = Context(resolve_options(root))
    with root:
        yield Shell(root, root.obj)
    root.obj.close()


def json_documents(text: str) -> list[object]:
    decoder, documents, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        while text[at].isspace():
            at += 1
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def run_keys(shell: Shell, keys: str) -> None:
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        interactive(shell, input=pipe, output=DummyOutput())


def test_commands_history_and_errors(shell: Shell, capsys, tmp_path) -> None:
    run_keys(shell, "uptime\r-o raw version\routput yaml\rsrv info\rrpc no.such\rexit\r")
    out, err = capsys.readouterr()
    uptime, _ = json.JSONDecoder().raw_decode(out)
    assert uptime["uptime"] >= 0
    assert "\nkamrouter 0.1.0" in out and "version: kamrouter 0.1.0" in out
    assert "no.such: Method not found" in err
    assert shell.status == 1
    history = (tmp_path / "kamcli" / "history").read_text()
    assert "+uptime" in history and "+srv info" in history


def test_ctrl_d_leaves_and_usage_errors_do_not(shell: Shell, capsys) -> None:
    run_keys(shell, "stats --bogus\rclear\r\"unbalanced\rshell\rhelp\r\x04")
    out, err = capsys.readouterr()
    assert "Error: No such option '--bogus'; see 'stats --help'\n" in err
    assert "Error: no such command 'clear'; type help for the commands\n" in err
    assert "Usage:" not in err
    assert "No closing quotation" in err
    assert "Already in the shell" in err
    assert "Commands:" in out and "output FORMAT" in out


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_in_a_real_terminal(router: Router, tmp_path) -> None:
    """Tab completion of a method name, table output and live views on a TTY, history."""
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]

    def send(*keys: str) -> None:
        subprocess.run([*tmux, "send-keys", *keys], check=True)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-S", "-100"], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(text: str) -> None:
        wait_until(lambda: text in screen(), f"{text!r} on the screen", interval=0.05,
                   detail=screen)

    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "50",
                    f"{sys.executable} -m kamcli shell; sleep 30"], env=router.env, check=True)
    try:
        wait_for("kamcli>")
        send("rpc core.upti")
        wait_for("core.uptime")  # the completion menu, filled from system.listMethods
        send("Tab")
        wait_for("kamcli> rpc core.uptime")
        send("Enter")
        wait_for("up_since")
        send("stats core:rcv_requests", "Enter")
        wait_for("rcv_requests")
        send("stats --watch 0.2 --count 3 core:", "Enter")  # a Rich Live view with rates
        wait_for("statistics, every 0.2s")
        send("moni -i 0.2 -n 2", "Enter")
        wait_for("Transactions")
        send("exit", "Enter")
        history = Path(router.env["XDG_STATE_HOME"]) / "kamcli" / "history"
        wait_until(lambda: "+stats core:rcv_requests" in (
            history.read_text() if history.exists() else ""), "the history written")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def words(shell: Shell, text: str) -> list[str]:
    return [word for word, _, _ in completions(shell, text)]


def test_completion_candidates(shell: Shell) -> None:
    assert {"stats", "srv", "help", "exit"} <= set(words(shell, ""))
    assert "core.uptime" in words(shell, "rpc core.up")
    assert words(shell, "rpchelp system.listM") == ["system.listMethods"]
    assert {"sockets", "info", "debug"} <= set(words(shell, "srv "))
    assert words(shell, "stats --wat") == ["--watch"]
    assert words(shell, "output j") == ["json"]
    assert words(shell, "stats tm") == ["tmx:"]
    assert words(shell, "stats tmx:UAS") == ["tmx:UAS_transactions"]
    assert words(shell, "stats core:rcv_requests_inv") == ["core:rcv_requests_invite"]
    assert words(shell, "stats rcv_requests_inv") == ["rcv_requests_invite"]
    assert [start for _, start, _ in completions(shell, "rpc core.up")][0] == -len("core.up")


def test_shell_reads_a_script_from_stdin(router: Router) -> None:
    done = router.kamcli("shell", stdin="uptime\nstats core:rcv_requests\nexit\nversion\n")
    assert done.returncode == 0, done.stderr
    uptime, stats = json_documents(done.stdout)
    assert "uptime" in uptime and "core:rcv_requests" in stats
    failed = router.kamcli("shell", stdin="rpc no.such\n")
    assert failed.returncode == 1 and "Method not found" in failed.stderr
