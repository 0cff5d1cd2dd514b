"""The proxy pipeline, sans-IO: what happens between "a datagram arrived" and "these bytes go
to that address" (see :mod:`kamrouter.pipeline.proxy` for one INVITE, stage by stage).

- :mod:`.inbound`: Via received/rport, loop detection;
- :mod:`.outbound`: Max-Forwards, loose/strict routing, next hop, Via and Record-Route;
- :mod:`.replies`: stateless replies and where a reply without transaction goes;
- :mod:`.addressing`: where a URI points, and which addresses are this proxy;
- :mod:`.hooks`: the script-hook runner (plain/async hooks, per-call order, parking);
- :mod:`.proxy`: the stages put together, and tm's hooks.

It imports no trio and no socket: the router (:mod:`kamrouter.core`) wires it to both.
"""
