"""Live views (``moni``, ``dispatcher watch``) keep running across a router restart: they
say "reconnecting…", then resume with the restarted router."""
from __future__ import annotations

import queue
import signal
import subprocess
import threading
from typing import IO

import pytest

from conftest import BIN, Router, start_again, stop_router

WAIT = 30.0  # seconds any one expected line may take on a loaded machine


class Lines:
    """The lines a pipe delivers, read by a thread, waited for with a timeout."""

    def __init__(self, pipe: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._lines.put(line)

    def wait_for(self, text: str) -> str:
        while True:
            try:
                line = self._lines.get(timeout=WAIT)
            except queue.Empty:
                pytest.fail(f"no line with {text!r} within {WAIT:g}s")
            if text in line:
                return line


@pytest.mark.parametrize("args", [["moni", "-i", "0.2"],
                                  ["dispatcher", "watch", "-i", "0.2"]], ids=" ".join)
def test_live_view_resumes_after_a_restart(modules_router: Router, args: list[str]) -> None:
    router = modules_router
    view = subprocess.Popen([str(BIN / "kamcli"), "-o", "json", *args], env=router.env,
                            cwd=router.home, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = Lines(view.stdout), Lines(view.stderr)  # type: ignore[arg-type]
        out.wait_for('"time"')
        stop_router(router)
        err.wait_for("reconnecting…")
        start_again(router)
        err.wait_for("reconnected")
        out.wait_for('"time"')
        assert view.poll() is None
        view.send_signal(signal.SIGINT)  # Ctrl-C ends a live view normally
        assert view.wait(WAIT) == 0
    finally:
        if view.poll() is None:
            view.kill()
            view.wait()
