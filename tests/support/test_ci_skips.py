"""With CI=true a skipped test fails the run; without, it stays a skip."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SAMPLE = '''
import shutil
import pytest

@pytest.mark.skipif(True, reason="frobnicator is not installed")
def test_marked() -> None:
    pass

def test_skipped_inside() -> None:
    pytest.skip("no such peer")

@pytest.mark.xfail(reason="known")
def test_expected_failure() -> None:
    assert False

def test_plain() -> None:
    pass
'''


def run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # tests/, where support/ is
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                           "-p", "support.ci_skips", "-p", "no:cacheprovider", "-rA",
                           "--rootdir", str(tmp_path), "-c", os.devnull,
                           str(tmp_path / "test_sample.py")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_skips_fail_under_ci(tmp_path: Path) -> None:
    done = run(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    # a skipif mark fails in setup (an error), pytest.skip() in the test (a failure)
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in done.stdout, done.stdout
    assert "frobnicator is not installed" in done.stdout and "no such peer" in done.stdout


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    done = run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in done.stdout, done.stdout
