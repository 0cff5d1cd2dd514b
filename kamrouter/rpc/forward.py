"""Passing JSON-RPC calls on to another router process's stream socket (the supervisor of
worker processes answers some methods itself and hands the others to a worker).

:func:`call` sends one request and returns its result, or raises :class:`RpcError` with
the worker's error code, message and data unchanged; :class:`ForwardingRegistry` is a
method registry whose unknown names go to a worker through ``call``.
"""
from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from kamrouter.rpc.dispatch import encode
from kamrouter.rpc.framing import JsonSplitter
from kamrouter.rpc.registry import MethodRegistry, RpcError, RpcMethod

#: JSON-RPC "Server error": the worker could not be reached.
UNREACHABLE = -32000
#: Largest reply accepted from a worker (a big htable dump).
MAX_REPLY = 64 << 20

_ids = itertools.count(1)


async def call(path: str, method: str, params: list[Any] | dict[str, Any],
               timeout: float) -> Any:
    """``method(params)`` on the stream socket at ``path``; its result, or RpcError."""
    request = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(_ids)}
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_unix_socket(path)
            async with stream:
                await stream.send_all(encode(request) + b"\n")
                splitter = JsonSplitter(MAX_REPLY)
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        raise RpcError(UNREACHABLE, "worker closed the connection")
                    documents = splitter.feed(data)
                    if documents:
                        reply = json.loads(documents[0])
                        break
    except (OSError, trio.BrokenResourceError) as exc:
        raise RpcError(UNREACHABLE, f"worker not reachable ({exc})") from None
    except trio.TooSlowError:
        raise RpcError(UNREACHABLE, f"worker did not answer within {timeout:g} s") from None
    except ValueError as exc:  # not JSON, or too large
        raise RpcError(UNREACHABLE, f"unreadable answer from the worker: {exc}") from None
    if not isinstance(reply, dict):
        raise RpcError(UNREACHABLE, "unreadable answer from the worker: not an object")
    if "error" in reply:
        error = reply["error"] if isinstance(reply["error"], dict) else {}
        raise RpcError(error.get("code", UNREACHABLE), str(error.get("message", "error")),
                       error.get("data"))
    return reply.get("result")


def _params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any] | dict[str, Any]:
    return dict(kwargs) if kwargs and not args else list(args)


class ForwardingRegistry(MethodRegistry):
    """Methods registered here run here; any other name is passed on by ``forward``."""

    def __init__(self, forward: Callable[[str, list[Any] | dict[str, Any]], Awaitable[Any]]
                 ) -> None:
        super().__init__()
        self._forward = forward

    def get(self, name: str) -> RpcMethod | None:
        method = super().get(name)
        if method is not None:
            return method

        async def forwarded(*args: Any, **kwargs: Any) -> Any:
            return await self._forward(name, _params(args, kwargs))

        return RpcMethod(name, forwarded, inspect.signature(forwarded), {})
