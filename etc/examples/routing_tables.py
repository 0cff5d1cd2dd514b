"""Routing by tables: normalise the dialled number with a dialplan, refuse some numbers,
and send the call to the next hop of the number's longest prefix in an mtree.

New INVITEs: dialplan 1 rewrites the R-URI user to E.164 ("030 1234567" dialled as
0301234567 becomes +49301234567; no rule matches: 484 Address Incomplete); dialplan 2
refuses what it matches (403 with the rule's attrs as the reason); the mtree "routes" gives
the next hop of the longest matching prefix (none: 404 No Route), whatever host the R-URI
names. Other requests are routed as by the default script (etc/routes.py).

Tables (etc/routing-tables.toml): [dialplan] rules_file (Kamailio's dialplan table as CSV)
and [[mtree]] "routes" (prefix,value lines), both reloadable with kamcli.
"""
from __future__ import annotations

import logging

from kamrouter.default.routes import answered_here, handled_before_routing, record_route
from kamrouter.script import dialplan, mtree, rr, sl, tm

NORMALISE, REFUSE = 1, 2

log = logging.getLogger("kamrouter.script")


def request_route(msg):
    if handled_before_routing(msg):
        return
    rr.loose_route(msg)
    if msg.method != "INVITE":
        if not answered_here(msg):  # OPTIONS to this proxy: 200
            tm.relay(msg)
        return
    # A new call, typically addressed to this proxy's domain: the tables choose the next hop.
    if not dialplan.dp_translate(msg, NORMALISE):  # $rU -> $rU, attrs in msg.vars
        sl.send_reply(msg, 484, "Address Incomplete")
        return
    number = msg.ruri_user
    if dialplan.dp_match(msg, REFUSE, number):
        sl.send_reply(msg, 403, f"Forbidden ({msg.vars['dp_attrs']})")
        return
    hop = mtree.mt_match(msg, "routes", number)
    if hop is None:
        sl.send_reply(msg, 404, "No Route")
        return
    log.debug("%s (%s) -> %s", number, msg.vars["dp_attrs"], hop)
    msg.dst_uri = f"sip:{hop}"
    record_route(msg)
    tm.relay(msg)
