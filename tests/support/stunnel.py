"""stunnel (Debian stunnel4) between a plain-TCP sipp and a TLS peer: Debian's sipp is built
without TLS, so TLS calls go sipp --TCP--> stunnel client --TLS--> router, or router --TLS-->
stunnel server --TCP--> sipp."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from .ports import LOOPBACK, free_port, tcp_accepts


class Stunnel:
    def __init__(self, workdir: Path, *, client: bool, connect: int, ca: Path | None = None,
                 cert: Path | None = None, key: Path | None = None,
                 check_host: str | None = None) -> None:
        binary = shutil.which("stunnel4") or shutil.which("stunnel")
        if binary is None:
            raise RuntimeError("stunnel not found: install the Debian package stunnel4")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        lines = ["foreground = yes", "pid =", f"output = {workdir / 'stunnel.log'}",
                 "debug = 5", "[sip]", f"client = {'yes' if client else 'no'}",
                 f"accept = {LOOPBACK}:{self.port}", f"connect = {LOOPBACK}:{connect}"]
        if ca is not None:
            lines += [f"CAfile = {ca}", "verifyChain = yes"]
        if check_host is not None:
            lines.append(f"checkHost = {check_host}")
        if cert is not None:
            lines += [f"cert = {cert}", f"key = {key}"]
        self.config = workdir / "stunnel.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = workdir / "stunnel.log"
        self._process = subprocess.Popen([binary, str(self.config)], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def wait_listening(self, timeout: float = 15) -> Stunnel:
        deadline = time.monotonic() + timeout
        while not tcp_accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"stunnel did not listen on {self.port}:\n{log[-3000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
