"""A test's SIP workspace: the proxy under test, its sipp peers, and cleanup.

A test states its routing once for both routers (:class:`Routing`), asks the lab for a
proxy of the kind under test, creates UAS/UAC peers on free ports and runs them. A failed
run raises AssertionError carrying every sipp report and the proxy's log.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port
from .proxy import ProxyProcess, kamailio_proxy, kamrouter_proxy
from .sipp import Sipp, SippResult, Transport

#: kamrouter-workers: kamrouter with ``[core] workers = 2`` (a supervisor and two workers).
PROXY_KINDS = ("kamrouter", "kamailio", "kamrouter-workers")
WORKERS = 2


@dataclass(frozen=True)
class Routing:
    """One routing behaviour, written for both routers the tests can run against."""

    #: Kamailio config with the same behaviour.
    kamailio_cfg: Path
    #: kamrouter routing script: a file, its source text, or None for the built-in default.
    script: Path | str | None = None
    #: Environment of the kamrouter process (the example scripts read destinations there).
    env: Mapping[str, str] = field(default_factory=dict)
    #: Kamailio string defines (-A NAME="value") standing in for ``env``.
    defines: Mapping[str, str] = field(default_factory=dict)
    #: tm timers in ms for both routers, e.g. {"fr_inv_timer": 2000}: kamrouter's [tm]
    #: section, Kamailio's TM_FR_INV_TIMER define.
    tm: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Outcome:
    uac: SippResult
    uas: list[SippResult]


class SipLab:
    """Processes of one test, all on 127.0.0.1 free ports, stopped by :meth:`close`."""

    def __init__(self, workdir: Path, proxy_kind: str) -> None:
        if proxy_kind not in PROXY_KINDS:
            raise ValueError(f"proxy kind {proxy_kind!r}: expected one of {PROXY_KINDS}")
        self.workdir = workdir
        self.proxy_kind = proxy_kind
        self.proxy: ProxyProcess | None = None
        self._peers: list[Sipp] = []
        self._numbers = itertools.count(1)

    def start_proxy(self, routing: Routing) -> ProxyProcess:
        workdir = self.workdir / self.proxy_kind
        port = free_port()
        if self.proxy_kind.startswith("kamrouter"):
            workers = WORKERS if self.proxy_kind == "kamrouter-workers" else 1
            proxy = kamrouter_proxy(workdir, port, script=routing.script, tm=routing.tm,
                                    env=routing.env, sections={"core": {"workers": workers}})
        else:
            # The cfgs turn TM_<TIMER> defines into tm modparams.
            timers = {f"TM_{name.upper()}": ms for name, ms in routing.tm.items()}
            proxy = kamailio_proxy(workdir, port, cfg=routing.kamailio_cfg,
                                   defines={**routing.defines, **timers})
        self.proxy = proxy
        proxy.start()
        return proxy

    def uas(self, scenario: str, *, calls: int = 1, pause_ms: int = 0,
            lost_percent: float = 0, timeout_s: float = 20) -> Sipp:
        """A sipp UAS (not started) on a free UDP port; ``pause_ms`` feeds <pause/> steps."""
        return self._add(Sipp(f"uas{next(self._numbers)}", scenario, self.workdir,
                              port=free_port(), calls=calls, pause_ms=pause_ms,
                              lost_percent=lost_percent, timeout_s=timeout_s,
                              trace_messages=calls <= 10))

    def uac(self, scenario: str, *, to: str, via: ProxyProcess | None = None,
            transport: Transport = "udp", calls: int = 1, rate: float | None = None,
            pause_ms: int = 0, lost_percent: float = 0, timeout_s: float = 20) -> Sipp:
        """A sipp UAC (not started) calling ``to`` (host:port of the R-URI); ``via`` sends
        every message to that proxy instead (sipp -rsa)."""
        return self._add(Sipp(f"uac{next(self._numbers)}", scenario, self.workdir,
                              port=free_port(), remote=to,
                              outbound_proxy=via.address if via else None,
                              transport=transport, calls=calls, rate=rate, pause_ms=pause_ms,
                              lost_percent=lost_percent, timeout_s=timeout_s,
                              trace_messages=calls <= 10))

    def run(self, uac: Sipp, *uases: Sipp) -> Outcome:
        """Start the UASes, run the UAC to its end, wait for the UASes; every one must
        report all its calls successful, else AssertionError with everything we know."""
        for uas in uases:
            uas.start()
        for uas in uases:
            uas.wait_listening()
        uac_result = uac.start().wait()
        outcome = Outcome(uac_result, [uas.wait() for uas in uases])
        results = [outcome.uac, *outcome.uas]
        if not all(result.complete for result in results):
            raise AssertionError(self.report(results))
        return outcome

    def report(self, results: list[SippResult]) -> str:
        parts = [result.report() for result in results]
        if self.proxy is not None:
            parts.append(f"--- {self.proxy.kind} log ({self.proxy.log_path}):\n"
                         f"{self.proxy.log_tail()}")
        return "\n".join(parts)

    def close(self) -> None:
        for peer in self._peers:
            peer.kill()
        if self.proxy is not None:
            self.proxy.stop()

    def _add(self, peer: Sipp) -> Sipp:
        self._peers.append(peer)
        return peer
