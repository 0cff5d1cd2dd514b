"""Routing script of ``[routing] mode = "api"``: the routing API decides every new call.

The router runs this file instead of an operator script. It uses only the public script API,
so it is also a template for a script of your own that mixes API routing with local logic.
"""
# as the default
from kamrouter.default.routes import answered_here, handled_before_routing, record_route
from kamrouter.script import api, rr, rtjson, sl, tm


def request_route(msg):
    if handled_before_routing(msg):
        return None  # includes in-dialog requests: they follow Record-Route, the API is not asked
    rr.loose_route(msg)
    if msg.method not in api.methods:
        if not answered_here(msg):
            tm.relay(msg)  # not for the API to route
        return None
    # Returning the sub-route's coroutine parks the transaction while it runs: 100 Trying
    # sent, retransmissions absorbed, other calls routed; this call's later requests (a
    # CANCEL aside) wait for it to end. Everything above ran at once, without a task.
    return route_by_api(msg)


async def route_by_api(msg):
    decision = await api.decide(msg)
    if decision.reply is not None:
        sl.send_reply(msg, decision.reply.code, decision.reply.reason or None)
        return
    if decision.document is not None:
        rtjson.init_routes(msg, decision.document)
        rtjson.push_routes(msg)
        if decision.document.needs_branch_route:
            tm.on_branch(msg, "per_route")
        tm.on_failure(msg, "next_route")
    else:
        from kamrouter.script import dispatcher

        fallback = decision.dispatcher
        if not dispatcher.select_dst(msg, fallback.setid, fallback.alg):
            sl.send_reply(msg, 503, "No Destination Available")
            return
        tm.on_failure(msg, "next_destination")
    if api.record_route:
        record_route(msg)
    tm.relay(msg)


def per_route(msg):
    """Branch route: the route's own timers, extra headers, From/To and path."""
    rtjson.update_branch(msg)


def next_route(msg):
    """Failure route: serial documents move on to their next route."""
    fail_over(msg, rtjson.next_route, "next_route")


def next_destination(msg):
    """Failure route of the dispatcher fallback: the set's next destination."""
    from kamrouter.script import dispatcher

    fail_over(msg, dispatcher.next_dst, "next_destination")


def fail_over(msg, advance, failure_route):
    """Relay to the next target ``advance(msg)`` sets, after a failure worth retrying."""
    if tm.is_canceled(msg) or not tm.check_status(msg, api.failover_codes):
        return
    if advance(msg):
        tm.on_failure(msg, failure_route)
        tm.relay(msg)
