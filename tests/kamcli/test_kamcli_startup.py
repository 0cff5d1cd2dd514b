"""kamcli stays quick to start: heavy libraries load only when a command needs them.

(The --help time itself is measured, not asserted: see the report / README.)
"""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("rich", "httpx", "prompt_toolkit", "yaml", "trio", "kamrouter")

PROBE = f"""
import json, sys
from kamcli.main import cli
try:
    cli(sys.argv[1:], prog_name="kamcli")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)
"""


def loaded_after(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, timeout=60)
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_help_loads_no_heavy_library() -> None:
    assert loaded_after("--help") == []


def test_json_commands_load_no_heavy_library() -> None:
    # Fails to connect (exit 3), but only after the whole command path has run.
    assert loaded_after("-s", "/nonexistent/kamrouter.sock", "-o", "json", "uptime") == []
    assert loaded_after("-o", "json", "rpc", "--dry-run", "core.echo", "1") == []


def test_kamcli_never_imports_kamrouter() -> None:
    assert "kamrouter" not in loaded_after("-o", "table", "rpc", "--dry-run", "x.y")
