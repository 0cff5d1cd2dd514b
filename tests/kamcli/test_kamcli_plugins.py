"""Commands from installed plugins: the real kamcli-sipcheck package, and broken ones."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Router


def test_sipcheck_through_the_router(router: Router) -> None:
    result = router.kamcli_json("sipcheck", "-c", "2", "-i", "0")
    assert result["proxy"] == f"127.0.0.1:{router.sip_port}"
    assert [p["status"] for p in result["probes"]] == [200, 200]
    assert result["summary"]["answered"] == 2 and result["summary"]["min_ms"] > 0
    table = router.kamcli("-o", "table", "sipcheck", "-c", "1")
    assert table.returncode == 0 and "200" in table.stdout and "OK" in table.stdout
    assert "answered 1" in table.stderr


def test_sipcheck_without_answer_exits_3(router: Router, unused_port: int) -> None:
    done = router.kamcli("sipcheck", "--proxy", f"127.0.0.1:{unused_port}", "-c", "1",
                         "-w", "0.5")
    assert done.returncode == 3 and "no answer to OPTIONS" in done.stderr
    assert json.loads(done.stdout)["summary"]["lost"] == 1


def test_sipcheck_is_listed_as_a_plugin(router: Router) -> None:
    rows = {row["command"]: row for row in router.kamcli_json("plugins")}
    assert rows["sipcheck"]["origin"] == "plugin kamcli-sipcheck 0.1.0"
    assert rows["sipcheck"]["status"] == "ok"
    assert rows["uptime"]["origin"] == "built-in"


@pytest.fixture
def broken_plugins(tmp_path: Path) -> dict[str, str]:
    """A distribution on PYTHONPATH declaring two commands that cannot load."""
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[kamcli.commands]\nbroken = broken_plugin_mod:cli\nodd = odd_plugin_mod:thing\n")
    (tmp_path / "broken_plugin_mod.py").write_text("import libfoo_that_is_not_installed\n")
    (tmp_path / "odd_plugin_mod.py").write_text("thing = 42\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_broken_plugin_is_reported_by_name(router: Router, broken_plugins) -> None:
    done = router.kamcli("broken", "some", "--args", env=broken_plugins)
    assert done.returncode == 4
    assert "No such command" not in done.stderr
    assert ("command 'broken' (plugin broken-plugin 0.1 broken_plugin_mod:cli) failed to load: "
            "ModuleNotFoundError: No module named 'libfoo_that_is_not_installed'") in done.stderr
    debug = router.kamcli("-d", "broken", env=broken_plugins)
    assert "Traceback" in debug.stderr and debug.returncode == 4
    odd = router.kamcli("odd", env=broken_plugins)
    assert odd.returncode == 4 and "int is not a click command" in odd.stderr


def test_broken_plugin_is_listed_with_its_error(router: Router, broken_plugins) -> None:
    help_text = router.kamcli("--help", env=broken_plugins).stdout
    assert "broken" in help_text and "[failed to load: ModuleNotFoundError" in help_text
    failed = router.kamcli("-o", "json", "plugins", "--failed", env=broken_plugins)
    names = [row["command"] for row in json.loads(failed.stdout)]
    assert {"broken", "odd"} <= set(names) and "sipcheck" not in names
    # Everything else keeps working.
    assert router.kamcli("uptime", env=broken_plugins).returncode == 0
