"""kamrouter's embedded default routing script (also shipped as ``etc/routes.py``).

A transaction-stateful, record-routing proxy, like Kamailio's stock config without a
registrar: per-source rate limits, sanity checks, Max-Forwards, the relay policy, loose
routing of in-dialog requests, relay of new requests to their Request-URI. Copy it and point
``[routing] script`` at your copy to change it.

The relay policy (not an open relay): requests from trusted sources ([permissions]
trusted_groups; by default 127.0.0.1) go wherever they ask; any other source may only reach
this router itself or the allow list ([permissions] destination_groups, empty by default)
and gets 403 otherwise, and is rate-limited by pike.
"""
from kamrouter.script import core, maxfwd, permissions, pike, rr, sanity, sl, tm


def request_route(msg):
    if handled_before_routing(msg):
        return
    rr.loose_route(msg)  # consume a pre-loaded Route pointing at us
    if answered_here(msg):
        return
    if msg.method in ("INVITE", "SUBSCRIBE", "REFER"):
        record_route(msg)
    tm.relay(msg)


def handled_before_routing(msg):
    """The checks every routing script starts with (the examples import it too). True when
    they already dealt with the request: an untrusted source that floods or is banned
    (dropped by pike), Max-Forwards exhausted (483), a failed sanity check (answered with
    the reason), an untrusted source asking for a destination outside the allow list (403),
    an in-dialog request (routed by within_dialog), a CANCEL that matches nothing (481; tm
    handles the others before the script runs), a stray ACK."""
    trusted = permissions.allow_trusted(msg)
    if not trusted and not pike.check_req(msg):
        return True  # dropped unanswered, as Kamailio does: counted in pike:blocked_requests
    if not maxfwd.process(msg, 10):
        sl.send_reply(msg, 483, "Too Many Hops")
        return True
    if not sanity.check(msg):
        return True
    if not trusted and relay_refused(msg):
        return True
    if msg.to_tag is not None:
        within_dialog(msg)
        return True
    if msg.method == "CANCEL":
        sl.send_reply(msg, 481, "Call/Transaction Does Not Exist")
        return True
    return msg.method == "ACK"


def relay_refused(msg):
    """A request that asks to go ($du, Route or Request-URI) neither to this router nor to
    an allowed destination gets 403, so a stranger cannot reach other hosts or local
    services through the router. True when refused (an ACK is dropped, never answered)."""
    if permissions.allow_destination(msg):
        return False
    if msg.method != "ACK":
        sl.send_reply(msg, 403, "Relaying Forbidden: destination not allowed")
    return True


def record_route(msg):
    """rr.record_route, signing a trusted caller's Contact into our Record-Route: the
    callee may then send in-dialog requests back to it even when the callee is not a
    trusted source (permissions.contact_token)."""
    rr.record_route(msg, permissions.contact_token(msg))


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
