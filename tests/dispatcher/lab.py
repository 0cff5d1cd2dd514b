"""A real kamrouter running etc/examples/dispatcher_routing.py in front of sipp UASes.

Built on the shared harness (tests/support): sipp processes, the proxy process, free ports.
The UASes answer OPTIONS probes (sipp -aa) and run until :meth:`DispatcherLab.stop_uas`
interrupts them, so each reports how many calls it took.
"""
from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.ports import free_port
from support.proxy import ProxyProcess, kamrouter_binary, toml_document
from support.rpc import rpc_call
from support.sipp import Sipp, SippResult
from support.wait import TIMEOUT, wait_until

ROOT = Path(__file__).resolve().parents[2]
ROUTING_SCRIPT = ROOT / "etc" / "examples" / "dispatcher_routing.py"


class DispatcherLab:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.run_dir = workdir / "run"
        self.list_path = workdir / "dispatcher.list"
        self.proxy: ProxyProcess | None = None
        self.uases: dict[str, Sipp] = {}
        self._ports: dict[str, int] = {}
        self._peers: list[Sipp] = []
        self._uac_count = 0

    # -- destinations -----------------------------------------------------------------------

    def start_uas(self, name: str, calls: int = 1_000_000, trace: bool = False,
                  scenario: str = "uas.xml") -> Sipp:
        """A UAS answering calls and OPTIONS; restarting a name reuses its port. With
        ``calls`` it exits once it has completed that many calls (a destination that goes
        away without dropping a call in progress)."""
        port = self._ports.setdefault(name, free_port())
        uas = Sipp(f"{name}-{len(self._peers)}", scenario, self.workdir, port=port,
                   calls=calls, timeout_s=300, trace_messages=trace,
                   extra_args=("-aa", "-fd", "1"))  # -fd: counters readable while it runs
        self._peers.append(uas)
        self.uases[name] = uas
        uas.start()
        uas.wait_listening()
        return uas

    def uri(self, name: str) -> str:
        return f"sip:127.0.0.1:{self._ports[name]}"

    def stop_uas(self, name: str) -> SippResult:
        """Interrupt a UAS (SIGINT: sipp writes its final counters) and read its results."""
        uas = self.uases[name]
        if uas.pid is not None:
            try:
                os.kill(uas.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        return uas.wait(timeout=10)

    def write_list(self, lines: list[str]) -> None:
        self.list_path.write_text("\n".join(lines) + "\n")

    # -- the router -------------------------------------------------------------------------

    def start_router(self, alg: int, fr_timer_ms: int = 1000, script: Path = ROUTING_SCRIPT,
                     tm: dict[str, Any] | None = None, workers: int | None = None,
                     **dispatcher: Any) -> ProxyProcess:
        """``workers``: ``[core] workers`` (else the suite's, ``KAMROUTER_TEST_WORKERS``)."""
        port = free_port()
        core: dict[str, Any] = {"listen": [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}"],
                                "log_level": "warning"}
        if workers is not None:
            core["workers"] = workers
        sections = {
            "core": core,
            "routing": {"script": str(script)},
            "rpc": {"run_dir": str(self.run_dir)},
            "tm": tm or {},
            "dispatcher": {"list_file": str(self.list_path), **dispatcher},
        }
        config = self.workdir / "kamrouter.toml"
        config.write_text(toml_document(sections))
        env = {"KAMROUTER_DS_SET": "1", "KAMROUTER_DS_ALG": str(alg),
               "KAMROUTER_DS_FR_TIMER": str(fr_timer_ms)}
        self.proxy = ProxyProcess("kamrouter", [kamrouter_binary(), "-c", str(config)], port,
                                  self.workdir, env).start()
        # The SIP port accepts before the control socket exists.
        self.wait_for("the control socket", (self.run_dir / "kamrouter_rpc.sock").exists)
        return self.proxy

    def rpc(self, method: str, *params: Any) -> Any:
        """One request on the router's control socket; returns the result or the error."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(str(self.run_dir / "kamrouter_rpc.sock"))
            request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        document = json.loads(reply)
        return document["result"] if "result" in document else document["error"]

    def rpc_worker(self, index: int, method: str, *params: Any) -> Any:
        """One request on worker ``index``'s own control socket (``workers`` above 1)."""
        return rpc_call(self.run_dir / f"worker-{index}.sock", method, *params)

    def states(self) -> dict[str, str]:
        """URI -> FLAGS of every destination."""
        listing = self.rpc("dispatcher.list")
        return {t["DEST"]["URI"]: t["DEST"]["FLAGS"]
                for record in listing["RECORDS"] for t in record["SET"]["TARGETS"]}

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = TIMEOUT
                 ) -> None:
        wait_until(condition, what, timeout=timeout, interval=0.05,
                   detail=lambda: self.proxy.log_tail() if self.proxy else "")

    # -- callers ----------------------------------------------------------------------------

    def uac(self, calls: int, rate: float, pause_ms: int = 0, scenario: str = "uac.xml",
            port: int | None = None) -> Sipp:
        """A caller placing ``calls`` calls at ``rate`` calls/s through the router (from
        ``port``, else a free one)."""
        assert self.proxy is not None
        self._uac_count += 1
        uac = Sipp(f"uac{self._uac_count}", scenario, self.workdir, port=port or free_port(),
                   remote=self.proxy.address, calls=calls, rate=rate, pause_ms=pause_ms,
                   timeout_s=60, trace_messages=calls <= 10)
        self._peers.append(uac)
        return uac.start()

    def close(self) -> None:
        for peer in self._peers:
            peer.kill()
        if self.proxy is not None:
            self.proxy.stop()
