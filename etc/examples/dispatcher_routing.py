"""Load balancing with failover: the dispatcher picks a destination of a set, and a
failure route moves the call to the next one when a destination fails or does not answer.

New INVITEs (and other out-of-dialog requests) go to a destination of set DS_SET chosen
with algorithm DS_ALG. When the destination answers with a 5xx, or does not answer at all
within DS_FR_TIMER ms, it is marked inactive at once ("ip": probed until it answers again)
and the call moves on to the next destination of the set, in Kamailio's failover order.
OPTIONS probing (see [dispatcher] in the config) brings a target back once it answers.

Configuration (environment variables read when the script is loaded):
  KAMROUTER_DS_SET        destination set id (default 1)
  KAMROUTER_DS_ALG        selection algorithm (default 4, round robin); 0 Call-ID hash,
                          1 From hash, 8 priority order, 9 weight, 10 call load, ...
  KAMROUTER_DS_FR_TIMER   ms an INVITE may wait for the first reply of a destination before
                          the next one is tried (default 2000)
and the router's TOML config: [dispatcher] list_file, ping_interval, probing_mode, ...
"""
from __future__ import annotations

import logging
import os

# checks, in-dialog requests
from kamrouter.default.routes import handled_before_routing, record_route
from kamrouter.script import core, dispatcher, on_event, sl, tm

DS_SET = int(os.environ.get("KAMROUTER_DS_SET", "1"))
DS_ALG = int(os.environ.get("KAMROUTER_DS_ALG", "4"))
DS_FR_TIMER = int(os.environ.get("KAMROUTER_DS_FR_TIMER", "2000"))
CALL_LOAD = 10
#: Replies that mean "this destination is broken", not "the callee said no".
FAILOVER_ON = "5[0-9][0-9]"

log = logging.getLogger("kamrouter.script")


def request_route(msg):
    if DS_ALG == CALL_LOAD and msg.method == "BYE":
        dispatcher.load_update(msg)  # a BYE ends the call's load on its destination
    if handled_before_routing(msg):
        return
    if msg.method == "OPTIONS" and core.is_myself(msg.ruri):
        sl.send_reply(msg, 200, "OK")  # health check of this proxy itself
        return
    if msg.method == "INVITE":
        record_route(msg)  # so BYE comes back through us (call load bookkeeping)
    if not dispatcher.select_dst(msg, DS_SET, DS_ALG):
        sl.send_reply(msg, 503, "No destination available")
        return
    tm.set_timers(msg, fr_timer=DS_FR_TIMER)
    tm.on_failure(msg, "destination_failed")
    tm.relay(msg)


def destination_failed(msg):
    """Failure route: try the next destination when this one is broken or silent."""
    if tm.is_canceled(msg):
        dispatcher.load_unset(msg)
        return
    silent = tm.branch_timeout(msg) and not tm.branch_replied(msg)
    if silent or tm.check_status(msg, FAILOVER_ON):
        dispatcher.mark_dst(msg, "ip")
        if dispatcher.next_dst(msg):
            tm.set_timers(msg, fr_timer=DS_FR_TIMER)
            tm.on_failure(msg, "destination_failed")
            tm.relay(msg)
            return
    dispatcher.load_unset(msg)


def reply_route(msg):
    if DS_ALG == CALL_LOAD:
        dispatcher.load_update(msg)  # a 2xx to the INVITE confirms the call's load
    return True


@on_event("dispatcher:dst-down")
def destination_down(data):
    cause = f"{data['code']} {data['reason']}" if data["code"] else "no reply code"
    log.warning("destination %s of set %s is down (%s, from %s)", data["uri"],
                data["setid"], cause, data["origin"])


@on_event("dispatcher:dst-up")
def destination_up(data):
    log.warning("destination %s of set %s is up again", data["uri"], data["setid"])
