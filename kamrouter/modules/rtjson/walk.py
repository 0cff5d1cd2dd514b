"""Where a transaction is in its route document (sans-IO).

One :class:`RouteWalk` per transaction lives in ``msg.vars["_rtjson"]``, so it survives
into branch and failure routes. ``used`` is Kamailio's ``idx``: how many routes have been
handed out so far; ``first_branch`` is the transaction's branch index the pushed routes start
at (0, unless a failure route pushed a new document after earlier branches).
"""
from __future__ import annotations

from dataclasses import dataclass

from kamrouter.modules.rtjson.document import Route, RouteDocument


@dataclass(slots=True)
class RouteWalk:
    document: RouteDocument
    used: int = 0
    first_branch: int = 0

    @property
    def serial(self) -> bool:
        return self.document.routing == "serial"

    def push(self, first_branch: int = 0) -> tuple[Route, ...]:
        """The routes of the next relay, which starts at branch ``first_branch``: the first
        route (serial) or all of them (parallel).

        Pushing again starts over, as re-running ``rtjson_push_routes`` does in Kamailio.
        """
        routes = self.document.routes if not self.serial else self.document.routes[:1]
        self.used = len(routes)
        self.first_branch = first_branch
        return routes

    def next(self) -> Route | None:
        """The next serial route, or None when all are used (always None when parallel)."""
        if not self.serial or self.used >= len(self.document.routes):
            return None
        route = self.document.routes[self.used]
        self.used += 1
        return route

    def remaining(self) -> int:
        return len(self.document.routes) - self.used if self.serial else 0

    def route_for_branch(self, branch_index: int) -> Route | None:
        """The route whose per-branch attributes (timers, headers) apply to a branch.

        Serial: the route handed out last. Parallel (an extension; Kamailio applies them in
        serial mode only): push() made the routes branches ``first_branch`` onwards in
        document order, the R-URI branch first.
        """
        if self.used == 0:
            return None
        if self.serial:
            return self.document.routes[self.used - 1]
        position = branch_index - self.first_branch
        if 0 <= position < len(self.document.routes):
            return self.document.routes[position]
        return None
