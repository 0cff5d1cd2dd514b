"""One node of the two-node example (etc/nodes/): etc/examples/registrar.py behind a ban list.

Requests from a source address in the htable ``bans`` get 403 Forbidden; the table is
shared through Redis, so a ban set through any node (``kamcli htable sets bans 192.0.2.7
"fraud"``) holds on every node at once. Everything else is routed by the registrar script,
whose configuration ([usrloc], [registrar], [auth], ...) applies unchanged.
"""
from __future__ import annotations

import runpy
from pathlib import Path

from kamrouter.script import htable, sl

#: The registrar script's functions, run from its file (read afresh on every reload).
_registrar = runpy.run_path(str(Path(__file__).with_name("registrar.py")))
#: Its failure route, armed by name: it must be a function of this script too.
next_contacts = _registrar["next_contacts"]


def request_route(msg):
    if htable.has("bans", msg.src_ip):
        if msg.method != "ACK":  # an ACK (of our 403) is never answered
            sl.send_reply(msg, 403, "Forbidden")
        return
    _registrar["request_route"](msg)
