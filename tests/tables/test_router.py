"""dialplan and mtree in a real router process running the shipped example
(etc/routing-tables.toml's sections, etc/examples/routing_tables.py): kamcli end to end
(tables and JSON), live reloads, and sipp calls routed by dialplan + mtree."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from htable.conftest import RouterUnderTest
from support.ports import free_port
from support.sipp import Sipp

ETC = Path(__file__).resolve().parents[2] / "etc"
EXAMPLE = ETC / "examples" / "routing_tables.py"
FORBIDDEN = Path(__file__).resolve().parents[1] / "htable" / "scenarios" / "uac_forbidden.xml"
#: The example's own [dialplan] and [[mtree]] sections, as shipped.
SECTIONS = "[dialplan]" + (ETC / "routing-tables.toml").read_text().split("[dialplan]", 1)[1]


def start_router(workdir: Path, routes: str) -> RouterUnderTest:
    data = workdir / "routing-tables"
    data.mkdir(parents=True)
    shutil.copy(ETC / "routing-tables" / "dialplan.csv", data / "dialplan.csv")
    (data / "routes.csv").write_text(routes)
    return RouterUnderTest(workdir, tables=SECTIONS.replace("reload_delta = 5", "reload_delta = 0"),
                           script=EXAMPLE.read_text()).start()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RouterUnderTest]:
    process = start_router(tmp_path / "router",
                           (ETC / "routing-tables" / "routes.csv").read_text())
    try:
        yield process
    finally:
        process.stop()


def test_kamcli_dialplan(router: RouterUnderTest) -> None:
    assert router.kamcli_ok("dialplan", "translate", "1", "0301234567") == {
        "Output": "+49301234567", "Attributes": "national"}
    assert router.kamcli_ok("dialplan", "translate", "1", "2345678")["Output"] == "+49302345678"
    table = router.kamcli_ok("dialplan", "translate", "1", "00441234567", output="table")
    assert "+441234567" in table and "international" in table
    rules = router.kamcli_ok("dialplan", "show", "1")
    assert [(r["PRIO"], r["MATCHLEN"]) for r in rules] == [(40, 7), (0, 0), (10, 0), (20, 0),
                                                            (30, 0)]
    assert len(router.kamcli_ok("dialplan", "show")) == 7      # every dialplan
    shown = router.kamcli_ok("dialplan", "list", "2", output="table")  # the reference's name
    assert "premium" in shown and "+49900*" in shown
    missing = router.kamcli("dialplan", "translate", "1", "abc")
    assert missing.exit_code == 1 and "No translation" in missing.output
    assert "Traceback" not in missing.output


def test_kamcli_mtree(router: RouterUnderTest) -> None:
    assert router.kamcli_ok("mtree", "match", "routes", "+49301234567") == [
        {"PREFIX": "+4930", "TVALUE": "127.0.0.1:5080"}]
    assert [row["PREFIX"] for row in router.kamcli_ok("mtree", "match", "routes",
                                                      "+49301234567", "--mode", "2")] \
        == ["+4930", "+49"]
    table = router.kamcli_ok("mtree", "match", "routes", "+4989123", output="table")
    assert "+4989" in table and "127.0.0.1:5090" in table
    listed = router.kamcli_ok("mtree", "list", "routes")
    assert [row["tprefix"] for row in listed] == ["+1", "+49", "+4930", "+4989", "112"]
    summary = router.kamcli_ok("mtree", "summary")
    assert summary[0]["table"] == "routes" and summary[0]["nrnodes"] == 5
    assert "reload count" in router.kamcli_ok("mtree", "summary", output="table")
    missing = router.kamcli("mtree", "match", "routes", "+33123")
    assert missing.exit_code == 1 and "Prefix not found" in missing.output


def test_live_reloads_keep_the_old_tables_when_the_files_are_bad(router: RouterUnderTest) -> None:
    routes = router.workdir / "routing-tables" / "routes.csv"
    routes.write_text("+33,127.0.0.1:5070\n+33,127.0.0.1:5071\n")
    failed = router.kamcli("mtree", "reload", "routes")
    assert failed.exit_code == 1 and "routes.csv:2" in failed.output
    assert router.kamcli_ok("mtree", "match", "routes", "+4930")[0]["PREFIX"] == "+4930"
    routes.write_text("+33,127.0.0.1:5070\n")
    router.kamcli_ok("mtree", "reload")
    assert router.kamcli_ok("mtree", "match", "routes", "+331")[0]["TVALUE"] == "127.0.0.1:5070"

    rules = router.workdir / "routing-tables" / "dialplan.csv"
    rules.write_text("1,1,1,(0+)+\\1,0,,,bad\n")
    failed = router.kamcli("dialplan", "reload")
    assert failed.exit_code == 1 and "dialplan.csv:1" in failed.output
    assert router.kamcli_ok("dialplan", "translate", "1", "0301234")["Output"] == "+49301234"
    rules.write_text("1,1,0,7,0,,+497,seven\n")
    router.kamcli_ok("dialplan", "reload")
    assert router.kamcli_ok("dialplan", "translate", "1", "7")["Output"] == "+497"
    assert "reload failed" in router.process.log_tail()


def call(router: RouterUnderTest, workdir: Path, number: str, scenario: str,
         callee: str) -> None:
    uac = Sipp(f"uac-{number.lstrip('+')}", scenario, workdir, port=free_port(), remote=callee,
               outbound_proxy=router.address, timeout_s=10, extra_args=("-s", number))
    result = uac.start().wait()
    assert result.ok, result.report() + "\n" + router.process.log_tail()


def test_calls_routed_by_dialplan_and_mtree(tmp_path: Path) -> None:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; `make test` installs it)")
    workdir = tmp_path / "sipp"
    berlin = Sipp("uas-berlin", "uas.xml", workdir, port=free_port(), timeout_s=30,
                  trace_messages=True).start()
    germany = Sipp("uas-germany", "uas.xml", workdir, port=free_port(), timeout_s=30,
                   trace_messages=True).start()
    router = start_router(tmp_path / "router",
                          f"prefix,value\n+49,{germany.address}\n+4930,{berlin.address}\n")
    not_found = workdir / "uac_not_found.xml"
    workdir.mkdir(parents=True, exist_ok=True)
    not_found.write_text(FORBIDDEN.read_text().replace('"403"', '"404"'))
    try:
        berlin.wait_listening()
        germany.wait_listening()
        # Calls addressed to the proxy itself, as in the README: the mtree chooses the hop.
        proxy = router.address
        call(router, workdir, "0301234567", "uac.xml", proxy)    # national -> +4930 -> berlin
        call(router, workdir, "004940123456", "uac.xml", proxy)  # international -> +49
        call(router, workdir, "+4990012345", str(FORBIDDEN), proxy)  # dialplan 2 refuses
        call(router, workdir, "+33123456789", str(not_found), proxy)  # no prefix: 404
        invites = {}
        for uas in (berlin, germany):
            result = uas.wait()
            assert result.ok, result.report()
            invites[uas.name] = result.received("INVITE")[0].first_line
        assert invites["uas-berlin"].startswith("INVITE sip:+49301234567@")
        assert invites["uas-germany"].startswith("INVITE sip:+4940123456@")
        stats = router.kamcli_ok("stats", "dialplan:", "mtree:")
        assert stats["dialplan:translated"] >= 4 and stats["dialplan:not_matched"] >= 2
        assert stats["mtree:routes-matched"] == 2 and stats["mtree:routes-not_matched"] == 1
    finally:
        for uas in (berlin, germany):
            uas.kill()
        router.stop()
