"""API routing over evapi, written as a script: park the call, ask, resume, route, fail over.

The flow of Kamailio's evapi + rtjson recipe, step by step:

1. ``evapi.async_relay`` parks the INVITE (the core has sent 100 Trying and absorbs
   retransmissions) and sends the controllers a ``sip-routing`` event carrying the
   transaction id (``tindex``/``tlabel``, also as ``id``);
2. the controller answers with a route document carrying the same id
   (``{"id": "...", "routing": "serial", "routes": [...]}``) or with
   ``{"reply": {"code": 404, "reason": "..."}}``;
3. the script resumes with that answer: ``rtjson.init_routes`` + ``push_routes``, a branch
   route for per-route headers and timers, a failure route, ``tm.relay``;
4. each failure runs the failure route, which relays to ``rtjson.next_route`` while routes
   are left.

Configuration (TOML): an ``[evapi]`` section (``bind_addr``, default 127.0.0.1:8448) and
``core.load_modules = ["rtjson"]``. Controller: examples/controllers/evapi_controller.py or
anything that answers the event. ``[routing] mode = "api"`` with ``transport = "evapi"`` does
the same with no script at all.
"""
from __future__ import annotations

import logging

# checks, in-dialog requests
from kamrouter.default.routes import handled_before_routing, record_route
from kamrouter.modules.api.event import build_event
from kamrouter.script import evapi, on_event, rtjson, sl, tm

log = logging.getLogger("kamrouter.script")
#: Seconds the controller has to answer before the caller gets 503.
ANSWER_TIMEOUT = 2.0


async def request_route(msg):
    if handled_before_routing(msg):
        return
    if msg.method != "INVITE":
        sl.send_reply(msg, 405, "Method Not Allowed")
        return
    answer = await evapi.async_relay(msg, build_event(msg, []), timeout=ANSWER_TIMEOUT)
    if answer is None:
        sl.send_reply(msg, 503, "Routing API Unavailable")
        return
    if "reply" in answer:
        sl.send_reply(msg, answer["reply"]["code"], answer["reply"].get("reason"))
        return
    try:
        rtjson.init_routes(msg, answer)
    except ValueError as exc:  # the error names every bad field of the document
        log.warning("unusable route document for %s: %s", msg.call_id, exc)
        sl.send_reply(msg, 500, "Bad Route Document")
        return
    rtjson.push_routes(msg)
    tm.on_branch(msg, "per_route")
    tm.on_failure(msg, "next_route")
    record_route(msg)
    tm.relay(msg)


def per_route(msg):
    """Branch route: the route's own timers, extra headers and From/To."""
    rtjson.update_branch(msg)


def next_route(msg):
    """Failure route: the current route failed; relay to the next one, if any."""
    if tm.is_canceled(msg):
        return
    if rtjson.next_route(msg):
        tm.on_failure(msg, "next_route")
        tm.relay(msg)


@on_event("evapi:connection-new")
def controller_connected(data):
    log.info("routing controller connected from %s:%s", data["srcaddr"], data["srcport"])


@on_event("evapi:connection-closed")
def controller_gone(data):
    log.warning("routing controller %s:%s disconnected", data["srcaddr"], data["srcport"])
