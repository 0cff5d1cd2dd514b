"""The event document the router sends to the routing API for each new call.

    {"event": "sip-routing", "version": "1.0",
     "id": "1234:5", "tindex": 1234, "tlabel": 5,
     "method": "INVITE", "ruri": "sip:+4930123@example.com",
     "caller": "alice", "callee": "+4930123",
     "from": "sip:alice@example.com", "to": "sip:+4930123@example.com",
     "call_id": "...", "source_address": "192.0.2.10", "source_port": 5060,
     "transport": "udp", "headers": {"P-Asserted-Identity": "<sip:alice@example.com>"}}

``callee`` is the R-URI user (what prefix tables match), ``caller`` the From user; either is
``""`` when the URI has no user part. ``id`` (or ``tindex``/``tlabel``) must come back in
an evapi answer; HTTP answers need not carry it.
"""
from __future__ import annotations

from typing import Any

EVENT_NAME = "sip-routing"
VERSION = "1.0"


def build_event(msg: Any, headers: list[str]) -> dict[str, Any]:
    selected = {}
    for name in headers:
        value = msg.get_header(name)
        if value is not None:
            selected[name] = value
    return {
        "event": EVENT_NAME,
        "version": VERSION,
        "id": f"{msg.tindex}:{msg.tlabel}",
        "tindex": msg.tindex,
        "tlabel": msg.tlabel,
        "method": msg.method,
        "ruri": msg.ruri,
        "caller": msg.from_user or "",
        "callee": msg.ruri_user or "",
        "from": msg.from_uri,
        "to": msg.to_uri,
        "call_id": msg.call_id,
        "source_address": msg.src_ip,
        "source_port": msg.src_port,
        "transport": msg.proto,
        "headers": selected,
    }
