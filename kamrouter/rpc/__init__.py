"""JSON-RPC 2.0 control plane: the method registry and its transports."""
from kamrouter.rpc.registry import MethodRegistry, RpcError, RpcMethod

__all__ = ["MethodRegistry", "RpcError", "RpcMethod"]
