"""One sipp process (a UAS answering or a UAC placing calls) and what it reported.

Results come from sipp's own files: ``-trace_stat`` (final call counters), ``-trace_err``
(unexpected messages and why calls failed), ``-trace_screen`` (final screen), optionally
``-trace_msg`` (every message, for checks on headers) and ``-trace_rtt`` (response times),
plus the exit code (0: every call succeeded).
"""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .ports import LOOPBACK, free_port, tcp_listening, udp_bound
from .siptrace import TracedMessage, read_message_log

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
#: Above ~4,000 calls/s sipp's default 64 KB socket buffers drop datagrams.
SOCKET_BUFFER = 4 * 1024 * 1024

Transport = Literal["udp", "tcp"]

_EXIT_CODES = {
    0: "every call succeeded",
    1: "at least one call failed",
    97: "stopped by an internal command",
    99: "exited without processing a call",
    254: "could not bind its socket",
    255: "fatal error",
}


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if found is None:
        raise RuntimeError("sipp not found: install the Debian package sip-tester")
    return found


@dataclass
class SippResult:
    """What one sipp run reported."""

    name: str
    argv: list[str]
    #: The run's call limit (-m).
    calls: int
    returncode: int
    stats: dict[str, str]
    errors: str
    screen: str
    stderr: str
    messages: list[TracedMessage] = field(default_factory=list)
    rtt_files: list[Path] = field(default_factory=list)

    @property
    def successful(self) -> int:
        return int(self.stats.get("SuccessfulCall(C)", 0))

    @property
    def failed(self) -> int:
        return int(self.stats.get("FailedCall(C)", 0))

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0

    @property
    def complete(self) -> bool:
        """Every one of its calls succeeded (not merely none failed before sipp stopped)."""
        return self.ok and self.successful == self.calls

    def received(self, kind: str | int, cseq_method: str | None = None) -> list[TracedMessage]:
        """Messages received of a method ("ACK") or a status (200, optionally only replies
        to ``cseq_method``), in arrival order."""
        return [m for m in self.messages if m.direction == "received"
                and (m.method == kind if isinstance(kind, str) else m.status == kind)
                and (cseq_method is None or m.cseq_method == cseq_method)]

    def report(self, max_chars: int = 6000) -> str:
        """A failure description: exit code, counters, sipp's error log and last screen."""
        meaning = _EXIT_CODES.get(self.returncode, "unknown exit code")
        lines = [f"--- sipp {self.name}: exit {self.returncode} ({meaning}), "
                 f"{self.successful} successful / {self.failed} failed calls",
                 "    " + " ".join(self.argv)]
        failures = {k: v for k, v in self.stats.items()
                    if k.startswith("Failed") and k.endswith("(C)") and v not in ("", "0")}
        if failures:
            lines.append(f"    failure counters: {failures}")
        # sipp echoes its error log on stderr: show stderr only when there is no log.
        stderr = "" if self.errors.strip() else self.stderr
        for title, text in (("error log", self.errors), ("stderr", stderr),
                            ("final screen", self.screen)):
            if text.strip():
                lines.append(f"    {title}:\n{_tail(text, max_chars)}")
        return "\n".join(lines)


class Sipp:
    """A sipp process: build its command line, start it, wait for it, read its results."""

    def __init__(self, name: str, scenario: str, workdir: Path, *, port: int,
                 remote: str | None = None, outbound_proxy: str | None = None,
                 transport: Transport = "udp", calls: int = 1, rate: float | None = None,
                 pause_ms: int = 0, lost_percent: float = 0, timeout_s: float = 20,
                 trace_messages: bool = False, trace_rtt: bool = False,
                 extra_args: tuple[str, ...] = (), local_ip: str = LOOPBACK) -> None:
        self.name = name
        self.local_ip = local_ip
        self.calls = calls
        self.port = port
        self.transport = transport
        self.timeout_s = timeout_s
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._files = {kind: self.workdir / f"{kind}.log" for kind in
                       ("stats", "errors", "screen", "messages", "stderr")}
        scenario_path = Path(scenario) if "/" in scenario else SCENARIO_DIR / scenario
        if not scenario_path.is_file():
            raise FileNotFoundError(f"sipp scenario not found: {scenario_path}")
        argv = [sipp_binary(), "-sf", str(scenario_path), "-i", local_ip, "-p", str(port),
                "-t", "t1" if transport == "tcp" else "u1",
                "-m", str(calls), "-d", str(pause_ms), "-nostdin",
                "-buff_size", str(SOCKET_BUFFER),
                # Its own control port: by default every sipp takes the first free one from
                # 8888 up, where another test's "quit" command could reach it.
                "-cp", str(free_port()),
                "-timeout", f"{timeout_s:g}s", "-timeout_error",
                "-trace_stat", "-stf", str(self._files["stats"]),
                "-trace_err", "-error_file", str(self._files["errors"]),
                "-trace_screen", "-screen_file", str(self._files["screen"])]
        if remote is not None:
            argv.append(remote)
        if outbound_proxy is not None:
            argv += ["-rsa", outbound_proxy]
        if rate is not None:
            argv += ["-r", f"{rate:g}"]
        if lost_percent:
            argv += ["-lost", f"{lost_percent:g}"]
        if trace_messages:
            argv += ["-trace_msg", "-message_file", str(self._files["messages"])]
        if trace_rtt:
            argv += ["-trace_rtt", "-rtt_freq", "1"]  # sipp drops an unflushed batch at exit
        self.argv = argv + list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self.result: SippResult | None = None

    @property
    def address(self) -> str:
        return f"{self.local_ip}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> Sipp:
        with open(self._files["stderr"], "wb") as stderr:
            self._process = subprocess.Popen(self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=stderr)
        return self

    def successful_so_far(self) -> int:
        """Successful calls in sipp's last periodic stats row (needs ``-fd``: while it runs,
        sipp writes a row every that many seconds); 0 before the first."""
        try:
            return int(_last_stats_row(self._files["stats"]).get("SuccessfulCall(C)", 0))
        except ValueError:  # a row being written
            return 0

    def wait_listening(self, timeout: float = 20) -> None:
        """Block until this sipp has bound its port (for a UAS, before calls are placed)."""
        bound = tcp_listening if self.transport == "tcp" else udp_bound
        deadline = time.monotonic() + timeout
        while not bound(self.port):
            if self._process is None or self._process.poll() is not None:
                raise AssertionError(f"sipp {self.name} exited before listening:\n"
                                     f"{self._collect().report()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sipp {self.name} not listening on {self.address} "
                                     f"after {timeout:g} s")
            time.sleep(0.02)

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for sipp to exit by itself (it is bounded by -m and -timeout) and read results."""
        if self._process is None:
            raise RuntimeError(f"sipp {self.name} was never started")
        try:
            self._process.wait(timeout if timeout is not None else self.timeout_s + 10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.result = self._collect()
        return self.result

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def _collect(self) -> SippResult:
        process = self._process
        returncode = process.poll() if process else None
        return SippResult(
            name=self.name, argv=self.argv, calls=self.calls,
            returncode=-9 if returncode is None else returncode,
            stats=_last_stats_row(self._files["stats"]),
            errors=_read(self._files["errors"]), screen=_read(self._files["screen"]),
            stderr=_read(self._files["stderr"]),
            messages=read_message_log(self._files["messages"]),
            rtt_files=sorted(self.workdir.glob("*_rtt.csv")))


def _last_stats_row(path: Path) -> dict[str, str]:
    """The final counters of a ``-trace_stat`` file (';'-separated, header row first)."""
    rows = [line for line in _read(path).splitlines() if line.strip()]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0].split(";"), rows[-1].split(";"), strict=False))


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _tail(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else "[...]\n" + text[-max_chars:]
