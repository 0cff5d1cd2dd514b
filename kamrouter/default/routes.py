"""kamrouter's embedded default routing script (also shipped as ``etc/routes.py``).

A transaction-stateful, record-routing proxy, like Kamailio's stock config without a
registrar: sanity checks, Max-Forwards, loose routing of in-dialog requests, relay of new
requests to their Request-URI. Copy it and point ``[routing] script`` at your copy to change it.
"""
from kamrouter.script import core, maxfwd, rr, sanity, sl, tm


def request_route(msg):
    if not maxfwd.process(msg, 10):
        sl.send_reply(msg, 483, "Too Many Hops")
        return
    if not sanity.check(msg):
        return  # sanity already answered with the reason
    if msg.to_tag is not None:
        within_dialog(msg)
        return
    if msg.method == "CANCEL":
        # CANCELs matching an INVITE we relay are handled by tm before the script runs.
        sl.send_reply(msg, 481, "Call/Transaction Does Not Exist")
        return
    if msg.method == "ACK":
        return  # a stray ACK outside any dialog: nothing to do
    rr.loose_route(msg)  # consume a pre-loaded Route pointing at us
    if core.is_myself(msg.ruri):
        if msg.method == "OPTIONS":
            sl.send_reply(msg, 200, "OK")  # keep-alive / health check of this proxy
        else:
            sl.send_reply(msg, 404, "Not Found")
        return
    if msg.method in ("INVITE", "SUBSCRIBE", "REFER"):
        rr.record_route(msg)
    tm.relay(msg)


def within_dialog(msg):
    """Requests with a To tag follow the route set recorded at dialog creation or, when the
    peers did not keep one (e.g. sipp's built-in scenarios), their Request-URI."""
    if rr.loose_route(msg) or not core.is_myself(msg.ruri):
        tm.relay(msg)  # an ACK for a 2xx goes statelessly; everything else statefully
        return
    if msg.method != "ACK":
        sl.send_reply(msg, 404, "Not Here")
