"""Serial forking: ring one destination after another until one answers.

The INVITE goes to the first destination. When that one fails with a reply listed in
RETRY_ON (busy, unavailable, server error, or 408 because it rang longer than
``[tm] fr_inv_timer``), the failure route sends the call on to the next destination.
The destinations still to try travel with the transaction in ``msg.vars``, the
per-transaction storage that failure routes see.

Configuration:
  KAMROUTER_SERIAL_TARGETS   environment variable: comma-separated SIP URIs, tried in
                             order; each replaces the Request-URI. Default: DEFAULT_TARGETS.
  [tm] fr_inv_timer          in the router's TOML config: how long (ms) a destination may
                             ring before it counts as not answering.
"""
from __future__ import annotations

import os

# checks, in-dialog requests
from kamrouter.default.routes import handled_before_routing, record_route
from kamrouter.script import ScriptMessage, tm

DEFAULT_TARGETS = "sip:127.0.0.1:5080,sip:127.0.0.1:5090"
TARGETS = [uri.strip() for uri in
           os.environ.get("KAMROUTER_SERIAL_TARGETS", DEFAULT_TARGETS).split(",") if uri.strip()]
#: Final replies (regular expression on the status code) that move on to the next target.
RETRY_ON = "486|480|408|5[0-9][0-9]"


def request_route(msg: ScriptMessage) -> None:
    if handled_before_routing(msg):
        return
    record_route(msg)
    first, *rest = TARGETS
    msg.ruri = first
    msg.vars["serial_targets"] = rest
    tm.on_failure(msg, "next_target")
    tm.relay(msg)


def next_target(msg: ScriptMessage) -> None:
    """Failure route: the current destination failed; try the next one, if any."""
    if tm.is_canceled(msg):
        return
    remaining = msg.vars["serial_targets"]
    if remaining and tm.check_status(msg, RETRY_ON):
        msg.ruri = remaining[0]
        msg.vars["serial_targets"] = remaining[1:]
        tm.on_failure(msg, "next_target")
        tm.relay(msg)
