"""htable in a real router process: kamcli end to end over the control socket, and the
shipped ban-list example (etc/banlist.toml's tables, etc/examples/banlist.py) driven by sipp:
ban with kamcli -> 403; unban -> the call goes on; bans survive a restart and a crash."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ports import free_port
from support.sipp import Sipp
from support.wait import wait_until

from kamcli.commands.htable import PROGRESS_FROM

from .conftest import RouterUnderTest

ETC = Path(__file__).resolve().parents[2] / "etc"
EXAMPLE = ETC / "examples" / "banlist.py"
SCENARIOS = Path(__file__).parent / "scenarios"

#: The example's own tables as shipped, plus a static one and a stored one with
#: write-behind off (so store/reload can be checked without racing it).
TABLES = "[[htable]]" + (ETC / "banlist.toml").read_text().split("[[htable]]", 1)[1] + """
[[htable]]
name = "static"
load_file = "static.csv"

[[htable]]
name = "stored"
persist = "sqlite"
write_behind = 0
"""


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RouterUnderTest]:
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "static.csv").write_text("key,value,type\n15,gw1\nweight,3,int\n")
    process = RouterUnderTest(tmp_path / "router", tables=TABLES,
                              script=EXAMPLE.read_text()).start()
    try:
        yield process
    finally:
        process.stop()


def items(router: RouterUnderTest, table: str) -> dict[str, tuple[object, str]]:
    return {row["key"]: (row["value"], row["type"])
            for row in router.kamcli_ok("htable", "dump", table)}


def test_kamcli_htable_end_to_end(router: RouterUnderTest, tmp_path: Path) -> None:
    names = [t["name"] for t in router.kamcli_ok("htable", "list-tables")]
    assert names == ["bans", "flood", "static", "stored"]
    assert items(router, "static") == {"15": ("gw1", "str"), "weight": (3, "int")}

    router.kamcli_ok("htable", "sets", "bans", "1000", "42")  # numeric key and value: strings
    router.kamcli_ok("htable", "seti", "bans", "n", "7")
    router.kamcli_ok("htable", "setxs", "bans", "temp", "x", "600")
    router.kamcli_ok("htable", "setxi", "bans", "tempi", "5", "600")
    router.kamcli_ok("htable", "setex", "bans", "n", "300")
    got = router.kamcli_ok("htable", "get", "bans", "1000", "n")
    assert [(r["key"], r["value"], r["type"]) for r in got] == [("1000", "42", "str"),
                                                                ("n", 7, "int")]
    assert got[1]["expire"]  # a local time, as Kamailio prints it
    dump = {r["key"]: r for r in router.kamcli_ok("htable", "dump", "bans")}
    assert dump["temp"]["expires_in"] <= 600 and dump["1000"]["expires_in"] is None
    assert [r["key"] for r in router.kamcli_ok("htable", "dump", "bans", "--match", "%~temp")] \
        == ["temp", "tempi"]
    table_view = router.kamcli_ok("htable", "dump", "bans", output="table")
    assert "expires in" in table_view and "tempi" in table_view

    missing = router.kamcli("htable", "get", "bans", "nobody")
    assert missing.exit_code == 1 and "nobody" in missing.output
    unknown = router.kamcli("htable", "get", "nope", "k")
    assert unknown.exit_code == 1 and "No such htable" in unknown.output

    router.kamcli_ok("htable", "rm", "bans", "n")  # one key: no question, as the reference
    assert "n" not in items(router, "bans")
    refused = router.kamcli("htable", "flush", "bans")  # a whole table: not without -y
    assert refused.exit_code == 2 and "-y" in refused.output

    # files that cannot be written or read: one line naming the file, exit 2 (usage)
    for args in (["export", "bans", "/nonexistent-dir/bans.csv"],
                 ["import", "bans", "/nonexistent-dir/bans.csv"]):
        failed = router.kamcli("htable", *args)
        assert failed.exit_code == 2, failed.output
        assert "/nonexistent-dir/bans.csv: No such file or directory" in failed.output
    assert [row["key"] for row in router.kamcli_ok("htable", "dump", "bans", "-m", "%~temp",
                                                    "--limit", "1")] == ["temp"]

    # export, flush, import: types and numeric-looking keys survive the round trip
    for name in ("bans.csv", "bans.jsonl"):
        router.kamcli_ok("htable", "export", "bans", str(tmp_path / name))
    exported = [json.loads(line) for line in (tmp_path / "bans.jsonl").read_text().splitlines()]
    assert {"key": "1000", "value": "42", "expires": None} in exported
    router.kamcli_ok("htable", "flush", "-y", "bans")
    assert items(router, "bans") == {}
    router.kamcli_ok("htable", "import", "bans", str(tmp_path / "bans.csv"))
    assert items(router, "bans") == {"1000": ("42", "str"), "temp": ("x", "str"),
                                     "tempi": (5, "int")}
    router.kamcli_ok("htable", "flush", "-y", "bans")
    router.kamcli_ok("htable", "import", "bans", str(tmp_path / "bans.jsonl"))
    assert items(router, "bans")["tempi"] == (5, "int")

    # store, change in memory, reload from SQLite
    router.kamcli_ok("htable", "sets", "stored", "1000", "42")
    router.kamcli_ok("htable", "seti", "stored", "credit", "-5")  # a value, not an option
    router.kamcli_ok("htable", "store", "stored")
    router.kamcli_ok("htable", "sets", "stored", "1000", "changed")
    router.kamcli_ok("htable", "reload", "stored")
    assert items(router, "stored") == {"1000": ("42", "str"), "credit": (-5, "int")}

    stats = {row["name"]: row for row in router.kamcli_ok("htable", "stats")}
    assert stats["bans"]["all"] == 3 and stats["bans"]["slots"] == 256
    counters = router.kamcli_ok("stats", "htable:")
    assert counters["htable:bans-items"] == 3 and "htable:bans-hits" in counters


def test_kamcli_import_export_of_a_large_table_with_progress(router: RouterUnderTest,
                                                             tmp_path: Path) -> None:
    rows = PROGRESS_FROM + 500
    source = tmp_path / "numbers.csv"
    source.write_text("".join(f"{10_000_000 + i},{i},int\n" for i in range(rows)))
    terminal = {"TTY_COMPATIBLE": "1"}  # rich draws on stderr as on a terminal
    imported = router.kamcli("htable", "import", "static", str(source), env=terminal)
    assert imported.exit_code == 0, imported.output
    assert f"imported {rows} items" in imported.stderr
    assert "importing into static" in imported.stderr  # the progress bar
    exported = router.kamcli("htable", "export", "static", str(tmp_path / "out.jsonl"),
                             env=terminal)
    assert exported.exit_code == 0 and "exporting static" in exported.stderr
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(lines) == rows + 2  # and the table's own two items
    assert {"key": "10000007", "value": 7, "expires": None} in lines  # keys stay strings

    small = router.kamcli("htable", "export", "static", "--match", "==15",
                          str(tmp_path / "one.csv"), env=terminal)
    assert small.exit_code == 0 and "exporting" not in small.stderr  # no bar for one row


def stored_bans(router: RouterUnderTest) -> set[str]:
    path = router.workdir / "bans.sqlite"
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        return {key for key, in db.execute(
            "SELECT key_name FROM htable WHERE table_name = 'bans'")}


def test_bans_survive_a_restart_and_a_crash(router: RouterUnderTest) -> None:
    router.kamcli_ok("htable", "sets", "bans", "192.0.2.7", "fraud")
    router.stop()  # SIGTERM: store_on_stop writes the table to SQLite
    router.start()
    assert items(router, "bans") == {"192.0.2.7": ("fraud", "str")}

    router.kamcli_ok("htable", "setxs", "bans", "192.0.2.8", "probe", "3600")
    wait_until(lambda: "192.0.2.8" in stored_bans(router), "write-behind stores the ban")
    os.kill(router.process.pid, signal.SIGKILL)  # no chance to store at stop
    router.stop()
    router.start()
    bans = {row["key"]: row for row in router.kamcli_ok("htable", "dump", "bans")}
    assert set(bans) == {"192.0.2.7", "192.0.2.8"}
    assert 0 < bans["192.0.2.8"]["expires_in"] <= 3600


def sipp_call(router: RouterUnderTest, workdir: Path, scenario: str, uas: Sipp | None) -> None:
    target = uas.address if uas else f"127.0.0.1:{free_port()}"
    name = f"uac-{Path(scenario).stem}-{len(list(workdir.glob('uac-*')))}"
    uac = Sipp(name, scenario, workdir, port=free_port(), remote=target,
               outbound_proxy=router.address, timeout_s=10)
    result = uac.start().wait()
    assert result.ok, result.report() + "\n" + router.process.log_tail()


def builtin_uac(workdir: Path) -> str:
    """sipp's built-in uac (``sipp -sn uac``, as the config's comments use it): its ACK and
    BYE carry no Route set and go to the callee's address through the proxy."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "builtin_uac.xml"
    dumped = subprocess.run(["sipp", "-sd", "uac"], capture_output=True).stdout  # exits 99
    assert b"</scenario>" in dumped, dumped
    path.write_bytes(dumped)
    return str(path)


def test_ban_list_with_sipp(router: RouterUnderTest, tmp_path: Path) -> None:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; `make test` installs it)")
    workdir = tmp_path / "sipp"
    uas = Sipp("uas", "uas.xml", workdir, port=free_port(), calls=2, timeout_s=30).start()
    uas.wait_listening()
    try:
        sipp_call(router, workdir, "uac.xml", uas)  # not banned: the call goes through
        router.kamcli_ok("htable", "sets", "bans", "127.0.0.1", "test ban")
        sipp_call(router, workdir, str(SCENARIOS / "uac_forbidden.xml"), None)
        router.kamcli_ok("htable", "rm", "bans", "127.0.0.1")
        sipp_call(router, workdir, builtin_uac(workdir), uas)  # unbanned: through again
        assert uas.wait().ok
    finally:
        uas.kill()
