"""Ban list: reject requests from banned source addresses; ban floods automatically.

Operators ban and unban by hand with kamcli, on any node when the table is Redis-backed:

    kamcli htable sets bans 192.0.2.7 "fraud"        # banned until removed
    kamcli htable setxs bans 192.0.2.8 "probe" 3600  # banned for an hour
    kamcli htable rm bans 192.0.2.7                  # unbanned

and a source sending more than KAMROUTER_FLOOD_LIMIT requests within one `flood` window
(the table's autoexpire) is banned for KAMROUTER_FLOOD_BAN seconds. Banned sources get
403 Forbidden; everything else is relayed statefully, as by the default script
(etc/routes.py).

Tables (etc/banlist.toml): ``bans`` (source IP -> reason, kept in SQLite or shared through
Redis) and ``flood`` (source IP -> requests in the current window: autoexpire is the window
length, updateexpire = false keeps it from sliding, initval = 0 makes inc() count from 1).
"""
from __future__ import annotations

import logging
import os

# shared checks
from kamrouter.default.routes import answered_here, handled_before_routing, record_route
from kamrouter.script import htable, on_event, rr, sl, tm

FLOOD_LIMIT = int(os.environ.get("KAMROUTER_FLOOD_LIMIT", "200"))
FLOOD_BAN = int(os.environ.get("KAMROUTER_FLOOD_BAN", "300"))

log = logging.getLogger("kamrouter.script")


def request_route(msg):
    source = msg.src_ip
    if htable.get("bans", source) is not None:
        if msg.method != "ACK":  # an ACK (of our 403) is never answered
            sl.send_reply(msg, 403, "Forbidden")
        return
    if (htable.inc("flood", source) or 0) > FLOOD_LIMIT:
        htable.set("bans", source, "flood", expire=FLOOD_BAN)
        log.warning("banned %s for %d s: more than %d requests in a window", source,
                    FLOOD_BAN, FLOOD_LIMIT)
        sl.send_reply(msg, 403, "Forbidden")
        return
    if handled_before_routing(msg):
        return
    rr.loose_route(msg)
    if answered_here(msg):
        return
    if msg.method == "INVITE":
        record_route(msg)
    tm.relay(msg)


@on_event("htable:expired:bans")
def ban_expired(data):
    log.info("ban of %s (%s) expired", data["key"], data["value"])
