"""kamcli dispatcher: rows and transitions (pure), then every command against a running
router, in table and JSON output."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kamcli.commands.dispatcher import TransitionTracker, destination_rows, select_rows
from kamcli.main import cli

from .lab import DispatcherLab

LISTING = {"NRSETS": 2, "RECORDS": [
    {"SET": {"ID": 1, "TARGETS": [
        {"DEST": {"URI": "sip:127.0.0.1:5070", "FLAGS": "AP", "PRIORITY": 10,
                  "ATTRS": {"BODY": "weight=70", "DUID": None, "WEIGHT": 70, "RWEIGHT": 0},
                  "LATENCY": {"AVG": 1.5, "STD": 0.1, "EST": 1.4, "MAX": 2.0, "TIMEOUT": 0},
                  "RUNTIME": {"DLGLOAD": 3, "SELECTED": 42},
                  "PROBE": {"LAST": 100.0, "CODE": 200, "REASON": "OK", "SENT": 5,
                            "FAILED": 0}}},
        {"DEST": {"URI": "sip:127.0.0.1:5071", "FLAGS": "IP", "PRIORITY": 5}}]}},
    {"SET": {"ID": 2, "TARGETS": [
        {"DEST": {"URI": "sip:127.0.0.1:5072", "FLAGS": "DX", "PRIORITY": 0}}]}}]}


def test_rows_flatten_the_listing_and_filter() -> None:
    rows = destination_rows(LISTING)
    assert [(r["set"], r["uri"], r["state"], r["probing"]) for r in rows] == [
        (1, "sip:127.0.0.1:5070", "active", True), (1, "sip:127.0.0.1:5071", "inactive", True),
        (2, "sip:127.0.0.1:5072", "disabled", False)]
    first = rows[0]
    assert (first["weight"], first["active_calls"], first["selected"],
            first["last_probe_code"]) == (70, 3, 42, 200)
    assert first["latency_ms"] == {"avg": 1.5, "std": 0.1, "est": 1.4, "max": 2.0, "timeout": 0}
    assert [r["uri"] for r in select_rows(rows, 1, "inactive")] == ["sip:127.0.0.1:5071"]
    assert select_rows(rows, 3, None) == []


def test_transitions_are_logged_and_highlighted() -> None:
    tracker = TransitionTracker()
    rows = destination_rows(LISTING)
    assert tracker.update(rows, 100.0) == []
    rows[0]["flags"] = "IP"
    change, removal = tracker.update(rows[:2], 101.0)
    assert (change["uri"], change["from"], change["to"]) == ("sip:127.0.0.1:5070", "AP", "IP")
    assert (removal["uri"], removal["from"], removal["to"]) == ("sip:127.0.0.1:5072", "DX", None)
    assert tracker.log == [change, removal]
    assert tracker.recent(105.0) == {(1, "sip:127.0.0.1:5070")}
    assert tracker.recent(112.0) == set()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[DispatcherLab]:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester)")
    dispatcher_lab = DispatcherLab(tmp_path)
    yield dispatcher_lab
    dispatcher_lab.close()


def test_commands_against_a_running_router(lab: DispatcherLab) -> None:
    lab.start_uas("a")
    a = lab.uri("a")
    dead = "sip:127.0.0.1:9"
    lab.write_list([f"1 {a} 8 0 duid=a;weight=70", f"2 {dead} 8 5"])
    lab.start_router(4, ping_interval=0.5, ping_timeout=3.0, probing_mode=1)
    lab.wait_for("probe results", lambda: lab.states() == {a: "AP", dead: "IP"})
    runner = CliRunner()
    socket = str(lab.run_dir / "kamrouter_rpc.sock")

    def kamcli(*args: str, output: str = "json") -> Result:
        result = runner.invoke(cli, ["-s", socket, "-o", output, "dispatcher", *args])
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    rows = json.loads(kamcli("list").stdout)
    assert [(r["uri"], r["state"], r["flags"]) for r in rows] == \
        [(a, "active", "AP"), (dead, "inactive", "IP")]
    assert rows[0]["latency_ms"]["avg"] > 0 and rows[0]["last_probe_code"] == 200
    assert [r["uri"] for r in json.loads(kamcli("list", "--state", "inactive").stdout)] == [dead]
    assert [r["uri"] for r in json.loads(kamcli("list", "--set", "1").stdout)] == [a]
    table = kamcli("list", output="table").stdout
    assert a in table and "inactive" in table and "408" in table and "weight" in table

    assert json.loads(kamcli("hash", "4", "bob", "server.com").stdout) == \
        {"hashid": 3883463682, "slot": 2}
    assert json.loads(kamcli("ping", "off").stdout) == {"NewPingState": 0, "OldPingState": 1}
    assert "OldPingState" in kamcli("ping", output="table").stdout
    kamcli("ping", "on")

    assert json.loads(kamcli("memadd", "3", "sip:127.0.0.1:7", "--flags", "8")
                      .stdout) == "Ok. Dispatcher destination added."
    assert "added" in kamcli("add", "3", "sip:127.0.0.1:8", output="table").stdout
    assert "removed" in kamcli("memrm", "3", "sip:127.0.0.1:7", output="table").stdout
    kamcli("rm", "--yes", "3", "sip:127.0.0.1:8")
    assert "updated" in kamcli("set-state", "dp", "1", "all", output="table").stdout
    assert lab.states()[a] == "DP"
    assert json.loads(kamcli("reload").stdout) == "Ok. Dispatcher successfully reloaded."

    lines = kamcli("watch", "-n", "2", "-i", "0.2").stdout.splitlines()
    samples = [json.loads(line) for line in lines]
    assert len(samples) == 2 and {t["uri"] for t in samples[0]["targets"]} == {a, dead}
    assert "dispatcher:set1_selections" in samples[0]["stats"]
    assert samples[1]["rates"][f"selected:1:{a}"] == 0          # calls/s of each destination
    view = kamcli("watch", "-n", "1", output="table").stdout
    assert "transitions" in view and dead in view and "calls/s" in view

    error = runner.invoke(cli, ["-s", socket, "-o", "json", "dispatcher", "set-state", "x",
                                "1", "all"])
    assert error.exit_code == 1 and "Unknown State Value" in error.output
