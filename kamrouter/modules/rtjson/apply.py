"""The script functions: apply a route document to a transaction through the script API.

State per transaction is a :class:`RouteWalk` in ``msg.vars["_rtjson"]``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kamrouter.modules.rtjson.document import (
    NameAddrRewrite,
    Route,
    RouteDocument,
    parse_document,
)
from kamrouter.modules.rtjson.walk import RouteWalk
from kamrouter.sip import NameAddr, parse_uri

STATE_KEY = "_rtjson"


class RtjsonApi:
    """``from kamrouter.script import rtjson``: Kamailio's rtjson_* functions, msg first."""

    def init_routes(self, msg: Any, document: str | bytes | Mapping[str, Any] | RouteDocument
                    ) -> RouteDocument:
        """Validate ``document`` and store it for this transaction (cursor at the start).

        Raises :class:`~kamrouter.modules.rtjson.document.RouteDocumentError` (a ValueError)
        naming every bad field; nothing is stored then.
        """
        doc = document if isinstance(document, RouteDocument) else parse_document(document)
        msg.vars[STATE_KEY] = RouteWalk(doc)
        return doc

    def push_routes(self, msg: Any) -> bool:
        """Point the request at the first route; in parallel mode append the others as branches
        (each with its ``path``).

        Branches appended earlier are dropped first, as Kamailio does.
        """
        from kamrouter.script import tm

        walk = _walk(msg, "push_routes")
        first, *others = walk.push(len(msg.txn.branches) if msg.txn is not None else 0)
        msg.branches.clear()
        _target(msg, first)
        for route in others:
            tm.append_branch(msg, route.uri or msg.ruri, route.dst_uri, route.socket, route.path)
        return True

    def next_route(self, msg: Any) -> bool:
        """Serial routing: point the request at the next route (call ``tm.relay`` next).

        False when no route is left, the routing is parallel or there is no document.
        """
        walk: RouteWalk | None = msg.vars.get(STATE_KEY)
        route = walk.next() if walk is not None else None
        if route is None:
            return False
        _target(msg, route)
        return True

    def update_branch(self, msg: Any) -> bool:
        """In a branch route: apply the route's per-branch attributes to the branch.

        Timers (``tm.set_timers``), ``headers.extra``, ``headers.from``/``to`` (display
        and/or URI; tag and parameters kept), ``branch_flags`` (kept in the branch's
        ``flags``, visible to reply routes as ``msg.branch.flags``) and
        ``path`` (Route headers on top). False outside a branch route or without a document.
        """
        from kamrouter.script import tm

        walk: RouteWalk | None = msg.vars.get(STATE_KEY)
        target = msg.target
        if walk is None or target is None:
            return False
        route = walk.route_for_branch(msg.branch_index)
        if route is None:
            return False
        if route.fr_timer or route.fr_inv_timer:
            tm.set_timers(msg, fr_inv_timer=route.fr_inv_timer or None,
                          fr_timer=route.fr_timer or None)
        if route.path:
            # Appended branches got it from push_routes already; the R-URI branch (the
            # first route, or a serial failover's) can only get it here.
            target.path = route.path
        for name, value in route.extra_headers:
            msg.append_header(name, value)
        if route.from_ is not None:
            msg.sip.set_header("From", rewritten(msg.sip.from_, route.from_))
        if route.to is not None:
            msg.sip.set_header("To", rewritten(msg.sip.to, route.to))
        if route.branch_flags:
            target.branch_flags |= route.branch_flags
        return True

    def remaining(self, msg: Any) -> int:
        """How many serial routes are still unused (0 for parallel or without a document)."""
        walk: RouteWalk | None = msg.vars.get(STATE_KEY)
        return walk.remaining() if walk is not None else 0


def _walk(msg: Any, caller: str) -> RouteWalk:
    walk: RouteWalk | None = msg.vars.get(STATE_KEY)
    if walk is None:
        raise RuntimeError(f"rtjson.{caller}: no route document; call rtjson.init_routes first")
    return walk


def _target(msg: Any, route: Route) -> None:
    """Make ``route`` the request's destination; unset fields reset what an earlier route set."""
    if route.uri:
        msg.ruri = route.uri
    msg.dst_uri = route.dst_uri
    msg.socket = route.socket


def rewritten(original: NameAddr, rewrite: NameAddrRewrite) -> str:
    """A From/To value with the display name and/or URI replaced; tag and params kept.

    ``display: ""`` removes the display name, a missing one keeps the original.
    """
    display = original.display if rewrite.display is None else (rewrite.display or None)
    uri = parse_uri(rewrite.uri) if rewrite.uri else original.uri
    return str(NameAddr(uri, display, dict(original.params)))
