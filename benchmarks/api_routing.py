"""API routing setups for load runs: ``benchmarks/cps.py --routing api-http|api-evapi``.

Every call is routed by a reference controller (examples/controllers) that answers a
one-route serial document pointing at the benchmark's UAS::

    from api_routing import ApiRouting

    routing = ApiRouting("api-evapi", target="127.0.0.1:5080", workdir=tmp)
    config_sections = routing.sections     # merge into the kamrouter TOML ([routing], [api], ...)
    ... start kamrouter with them ...
    routing.start_controller()             # after kamrouter listens (evapi dials in)
    ... run sipp: uac -> kamrouter, uas at target ...
    routing.stop()                         # stops the controller

``api-http``: the controller is an HTTP server, kamrouter POSTs one event per call over
pooled keep-alive connections. ``api-evapi``: the controller connects to kamrouter's evapi
socket and answers each event on it. Compare ``api:latency_le_*`` and ``api:fallbacks``
(should stay 0) with ``stats.fetchn api:`` after the run.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from api.harness import Controller, evapi_controller, http_controller  # noqa: E402
from support.ports import LOOPBACK, free_port  # noqa: E402

Kind = Literal["api-http", "api-evapi"]
KINDS: tuple[Kind, ...] = ("api-http", "api-evapi")


class ApiRouting:
    """kamrouter config sections for API routing plus the controller process behind them."""

    def __init__(self, kind: Kind, *, target: str, workdir: Path, timeout: float = 2.0) -> None:
        if kind not in KINDS:
            raise ValueError(f"--routing: expected one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        self.workdir = workdir
        self.table = {"": {"routing": "serial", "routes": [{"uri": f"sip:service@{target}"}]}}
        self.controller: Controller | None = None
        api: dict[str, Any] = {"timeout": timeout, "on_error": "reply 503"}
        self.sections: dict[str, dict[str, Any]] = {"routing": {"mode": "api"}, "api": api}
        if kind == "api-http":
            # The HTTP controller can (and must) be up before kamrouter takes calls.
            self.controller, url = http_controller(workdir / "controller", self.table)
            api.update(transport="http", url=url)
        else:
            self.evapi_port = free_port()
            api.update(transport="evapi")
            self.sections["evapi"] = {"bind_addr": f"{LOOPBACK}:{self.evapi_port}",
                                      "queue_size": 8192}

    def start_controller(self) -> None:
        """For api-evapi: connect the controller to the running kamrouter (returns once
        connected). Nothing to do for api-http."""
        if self.kind == "api-evapi" and self.controller is None:
            self.controller = evapi_controller(self.workdir / "controller", self.table,
                                               self.evapi_port)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
