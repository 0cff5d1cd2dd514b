"""rtjson: route a request from a JSON route document (Kamailio's rtjson).

Script use, serial failover::

    from kamrouter.script import rtjson, tm

    def request_route(msg):
        rtjson.init_routes(msg, document)     # raises RouteDocumentError naming the field
        rtjson.push_routes(msg)
        tm.on_branch(msg, "per_branch")
        tm.on_failure(msg, "next_one")
        tm.relay(msg)

    def per_branch(msg):
        rtjson.update_branch(msg)             # timers, extra headers, From/To of the route

    def next_one(msg):
        if not tm.is_canceled(msg) and rtjson.next_route(msg):
            tm.on_failure(msg, "next_one")
            tm.relay(msg)

``push_routes``/``next_route`` set where a branch goes (R-URI, ``dst_uri``, ``socket``,
and ``path`` for the branches a parallel document appends); everything else a route carries
(timers, extra headers, From/To, branch flags, and ``path`` for the R-URI branch) is applied
per branch by ``update_branch`` in a branch route, for serial and (unlike Kamailio, which
does serial only) parallel documents alike.

The document model lives in :mod:`.document`, the per-transaction cursor in :mod:`.walk`,
the script functions in :mod:`.apply`.
"""
from __future__ import annotations

from typing import Any

from kamrouter.modules.base import Module
from kamrouter.modules.rtjson.apply import RtjsonApi
from kamrouter.modules.rtjson.document import (
    NameAddrRewrite,
    Route,
    RouteDocument,
    RouteDocumentError,
    parse_document,
)
from kamrouter.modules.rtjson.walk import RouteWalk

__all__ = ["NameAddrRewrite", "Route", "RouteDocument", "RouteDocumentError", "RouteWalk",
           "RtjsonApi", "RtjsonModule", "parse_document"]


class RtjsonModule(Module):
    name = "rtjson"

    def __init__(self, router: Any, config: Any) -> None:
        super().__init__(router, config)
        self._api = RtjsonApi()

    def api(self) -> RtjsonApi:
        return self._api
