"""Parallel forking: ring every destination at once; the first to answer takes the call.

The Request-URI is set to the first destination and each other destination is added as a
branch with ``tm.append_branch``; ``tm.relay`` sends all branches together. The first 2xx
is relayed to the caller and the branches still ringing get a CANCEL.

Configuration:
  KAMROUTER_PARALLEL_TARGETS  environment variable: comma-separated SIP URIs rung
                              together. Default: DEFAULT_TARGETS.
"""
from __future__ import annotations

import os

# checks, in-dialog requests
from kamrouter.default.routes import handled_before_routing, record_route
from kamrouter.script import ScriptMessage, tm

DEFAULT_TARGETS = "sip:127.0.0.1:5080,sip:127.0.0.1:5090"
TARGETS = [uri.strip() for uri in
           os.environ.get("KAMROUTER_PARALLEL_TARGETS", DEFAULT_TARGETS).split(",") if uri.strip()]


def request_route(msg: ScriptMessage) -> None:
    if handled_before_routing(msg):
        return
    record_route(msg)
    first, *others = TARGETS
    msg.ruri = first
    for uri in others:
        tm.append_branch(msg, uri)
    tm.relay(msg)


