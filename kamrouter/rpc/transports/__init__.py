"""The RPC transports: each turns bytes from its kind of client into dispatcher calls.

``stream`` (Unix stream socket, the default), ``dgram`` (Unix datagram socket) and ``fifo``
(named pipe) are compatible with Kamailio's jsonrpcs clients; ``http`` serves ``POST /RPC``
and ``GET /metrics``. Each runs as tasks of the router's nursery: one task per client
connection or request, bounded by :class:`~kamrouter.rpc.transports.limits.Limits`, so a slow
or broken client only ever stalls its own task.
"""
