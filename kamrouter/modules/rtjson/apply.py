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
        """Point the request at the first route; in parallel mode append the others as branches.

        Any branches appended earlier are dropped first, as Kamailio does.
        """
        from kamrouter.script import tm

        walk = _walk(msg, "push_routes")
        first, *others = walk.push()
        tm.clear_branches(msg)
        _target(msg, first)
        if first.branch_flags:
            msg.branch_flags |= first.branch_flags
        for route in others:
            tm.append_branch(msg, route.uri or msg.ruri, dst_uri=route.dst_uri, path=route.path,
                             socket=route.socket, branch_flags=route.branch_flags)
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
        """In a branch route: apply the route's timers, extra headers and From/To rewrites."""
        from kamrouter.script import tm

        walk: RouteWalk | None = msg.vars.get(STATE_KEY)
        route = walk.route_for_branch(msg.branch_index) if walk is not None else None
        if route is None:
            return False
        timers = {name: value for name, value in (("fr_timer", route.fr_timer),
                                                  ("fr_inv_timer", route.fr_inv_timer)) if value}
        if timers:
            tm.set_timers(msg, **timers)
        for name, value in route.extra_headers:
            msg.append_header(name, value)
        if route.from_ is not None:
            msg.sip.set_header("From", rewritten(msg.sip.from_, route.from_))
        if route.to is not None:
            msg.sip.set_header("To", rewritten(msg.sip.to, route.to))
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
    msg.path = route.path
    msg.socket = route.socket


def rewritten(original: Any, rewrite: NameAddrRewrite) -> str:
    """A From/To value with the display name and/or URI replaced; tag and params are kept."""
    display = original.display if rewrite.display is None else rewrite.display
    uri = rewrite.uri or str(original.uri)
    params = "".join(f";{name}" if value is None else f";{name}={value}"
                     for name, value in original.params.items())
    if not display:
        return f"<{uri}>{params}"
    quoted = display.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{uri}>{params}'
