"""JSON-RPC 2.0 control plane: the method registry, the dispatcher and its transports.

- :mod:`.config`       the ``[rpc]`` section (``RpcConfig``): paths, credentials, limits
- :mod:`.registry`     methods by name (modules register theirs: ``router.rpc.register``)
- :mod:`.params`       binding JSON params to a method's signature, type checks naming params
- :mod:`.dispatch`     JSON-RPC 2.0 processing: batches, notifications, error objects
- :mod:`.framing`      splitting a byte stream into JSON documents
- :mod:`.transports`   Unix stream (default), Unix datagram and FIFO (Kamailio-compatible),
                       HTTP ``POST /RPC`` + ``GET /metrics`` (credentials: ``.httpauth``)
- :mod:`.server`       ``serve_rpc``: every configured transport under one nursery
- :mod:`.core_methods` ``core.*``, ``corex.*``, ``system.*``, ``stats.*``, ``tm.stats``
- :mod:`.metrics`      Prometheus text exposition of the statistics
"""
from kamrouter.rpc.registry import MethodRegistry, RpcError, RpcMethod

__all__ = ["MethodRegistry", "RpcError", "RpcMethod"]
