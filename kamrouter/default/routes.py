"""kamrouter's embedded default routing script (also shipped as ``etc/routes.py``).

A transaction-stateful, record-routing proxy, like Kamailio's stock config without a
registrar: sanity checks, Max-Forwards, loose routing of in-dialog requests, relay of new
requests to their Request-URI. Copy it and point ``[routing] script`` at your copy to change it.
"""
from kamrouter.script import core, maxfwd, rr, sanity, sl, tm


def request_route(msg):
    if handled_before_routing(msg):
        return
    rr.loose_route(msg)  # consume a pre-loaded Route pointing at us
    if answered_here(msg):
        return
    if msg.method in ("INVITE", "SUBSCRIBE", "REFER"):
        rr.record_route(msg)
    tm.relay(msg)


def handled_before_routing(msg):
    """The checks every routing script starts with (the examples import it too). True when
    they already dealt with the request: Max-Forwards exhausted (483), a failed sanity check
    (answered with the reason), an in-dialog request (routed by within_dialog), a CANCEL
    that matches nothing (481; tm handles the others before the script runs), a stray ACK."""
    if not maxfwd.process(msg, 10):
        sl.send_reply(msg, 483, "Too Many Hops")
        return True
    if not sanity.check(msg):
        return True
    if msg.to_tag is not None:
        within_dialog(msg)
        return True
    if msg.method == "CANCEL":
        sl.send_reply(msg, 481, "Call/Transaction Does Not Exist")
        return True
    return msg.method == "ACK"


def answered_here(msg):
    """A new request addressed to this proxy itself: OPTIONS (a keep-alive or health check)
    gets 200, anything else 404. True when answered."""
    if not core.is_myself(msg.ruri):
        return False
    if msg.method == "OPTIONS":
        sl.send_reply(msg, 200, "OK")
    else:
        sl.send_reply(msg, 404, "Not Found")
    return True


def within_dialog(msg):
    """Requests with a To tag follow the route set recorded at dialog creation or, when the
    peers did not keep one (e.g. sipp's built-in scenarios), their Request-URI."""
    if rr.loose_route(msg) or not core.is_myself(msg.ruri):
        tm.relay(msg)  # an ACK for a 2xx goes statelessly; everything else statefully
        return
    if msg.method != "ACK":
        sl.send_reply(msg, 404, "Not Here")
