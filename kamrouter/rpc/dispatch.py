"""JSON-RPC 2.0 processing: request document in, reply document out (transport-neutral).

The :class:`~kamrouter.rpc.registry.MethodRegistry` is the only source of methods. From
jsonrpcserver we take the protocol vocabulary: error codes, the response records and their
wire serialisation. Its dispatch pipeline is not used, for reasons that are specific to this
router: its async variant gathers with ``asyncio`` (we run on trio), its sync variant cannot
await a method, it wants every method to return its ``Success``/``Error`` wrappers (modules
would all depend on it), its schema rejects the ``reply_name`` member Kamailio's FIFO clients
send, and it answers a batch with one bad element with a single error for the whole batch.

Rules implemented here, per the JSON-RPC 2.0 specification:

- a batch (array) is answered with an array of the replies to its non-notification members,
  in request order; an empty batch is an Invalid Request; a batch of notifications gets no
  reply at all;
- a notification (no ``id``) is executed and never answered, even when it fails;
- -32700 Parse error, -32600 Invalid Request, -32601 Method not found, -32602 Invalid params
  (the message names the parameter and shows the usage), -32603 Internal error;
- a module's :class:`RpcError` becomes ``{"code": 400|404|500..., "message": ...}`` like
  Kamailio's fault codes (code 0 becomes -32000, as Kamailio does).

Documents are parsed by :func:`kamrouter.boundedjson.loads`: one nested deeper than
``rpc.max_json_depth`` or holding an integer longer than ``rpc.max_json_digits`` gets a Parse
error naming the limit and is counted in ``rpc:refused_json_limit``.

Sync methods run inline on the event loop (they must be quick); async ones are awaited.
"""
from __future__ import annotations

import inspect
import json
import logging
import warnings
from typing import Any

from kamrouter import boundedjson
from kamrouter.boundedjson import DEFAULT_LIMITS, JsonLimitError, JsonLimits
from kamrouter.stats import Counter

with warnings.catch_warnings():
    # jsonrpcserver 5 loads its bundled schema through a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from jsonrpcserver.codes import (
        ERROR_INTERNAL_ERROR,
        ERROR_INVALID_PARAMS,
        ERROR_INVALID_REQUEST,
        ERROR_METHOD_NOT_FOUND,
        ERROR_PARSE_ERROR,
        ERROR_SERVER_ERROR,
    )
    from jsonrpcserver.response import (
        ErrorResponse,
        SuccessResponse,
        serialize_error,
        serialize_success,
    )
    from jsonrpcserver.sentinels import NODATA

from kamrouter.rpc.params import InvalidParams, bind
from kamrouter.rpc.registry import MethodRegistry, RpcError

__all__ = ["Dispatcher", "Refused", "encode", "error_reply", "ERROR_INTERNAL_ERROR", "ERROR_INVALID_PARAMS",
           "ERROR_INVALID_REQUEST", "ERROR_METHOD_NOT_FOUND", "ERROR_PARSE_ERROR",
           "ERROR_SERVER_ERROR"]

log = logging.getLogger("kamrouter.rpc")

#: Marks a request without an ``id`` member: a notification.
_NOTIFICATION = object()


def encode(document: Any) -> bytes:
    """Compact JSON without raw newlines, so a reply is also one line on a stream.

    A lone surrogate (a request may carry ``"\\ud800"``) is written as its JSON escape.
    """
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


def error_reply(code: int, message: str, request_id: Any = None, data: Any = NODATA) -> bytes:
    return encode(serialize_error(ErrorResponse(code, message, data, request_id)))


class Refused(Exception):
    """A request document that could not be read; ``reply`` is the Parse error to send."""

    def __init__(self, reply: bytes, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply


class Dispatcher:
    """Runs JSON-RPC requests against a :class:`MethodRegistry`."""

    def __init__(self, registry: MethodRegistry, json_limits: JsonLimits = DEFAULT_LIMITS,
                 refused_json: Counter | None = None) -> None:
        self.registry = registry
        self.json_limits = json_limits
        self.refused_json = refused_json or Counter("rpc", "refused_json_limit")

    def parse(self, payload: bytes) -> Any:
        """The request document in ``payload``; raises :class:`Refused` when unreadable."""
        try:
            return boundedjson.loads(payload, self.json_limits)
        except JsonLimitError as exc:
            self.refused_json.value += 1
            log.warning("RPC: refusing a request: %s", exc)
            raise Refused(error_reply(ERROR_PARSE_ERROR, "Parse error", data=str(exc)),
                          str(exc)) from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise Refused(error_reply(ERROR_PARSE_ERROR, "Parse error", data=str(exc)),
                          str(exc)) from None

    async def handle(self, payload: bytes) -> bytes | None:
        """Process one request document; return the reply, or None when none is due."""
        try:
            document = self.parse(payload)
        except Refused as refused:
            return refused.reply
        return await self.handle_document(document)

    async def handle_document(self, document: Any) -> bytes | None:
        """Like :meth:`handle` for an already parsed document."""
        if not isinstance(document, list):
            return await self._handle_one(document)
        if not document:
            return error_reply(ERROR_INVALID_REQUEST, "Invalid Request", data="empty batch")
        replies = [reply for reply in [await self._handle_one(item) for item in document]
                   if reply is not None]
        return b"[" + b",".join(replies) + b"]" if replies else None

    async def _handle_one(self, request: Any) -> bytes | None:
        problem = _invalid_request(request)
        if problem is not None:
            request_id = request.get("id") if isinstance(request, dict) else None
            if not _valid_id(request_id):
                request_id = None
            return error_reply(ERROR_INVALID_REQUEST, "Invalid Request", request_id, problem)
        request_id = request.get("id", _NOTIFICATION)
        try:
            result = await self._call(request["method"], request.get("params", []))
        except _Failure as failure:
            if request_id is _NOTIFICATION:
                return None
            return error_reply(failure.code, failure.message, request_id, failure.data)
        if request_id is _NOTIFICATION:
            return None
        try:
            return encode(serialize_success(SuccessResponse(result, request_id)))
        except (TypeError, ValueError, RecursionError) as exc:
            log.error("RPC %s returned a value that is not JSON: %s", request["method"], exc)
            return error_reply(ERROR_INTERNAL_ERROR, "Internal error", request_id,
                               f"result is not JSON serialisable: {exc}")

    async def _call(self, name: str, params: list[Any] | dict[str, Any]) -> Any:
        """The method's result; raises :class:`_Failure` with the error to send."""
        method = self.registry.get(name)
        if method is None:
            raise _Failure(ERROR_METHOD_NOT_FOUND, "Method not found", name)
        try:
            args, kwargs = bind(name, method.signature, method.checks, params)
        except InvalidParams as exc:
            raise _Failure(ERROR_INVALID_PARAMS, "Invalid params", str(exc)) from None
        log.debug("RPC %s %r", name, params)
        try:
            result = method.func(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except RpcError as exc:
            raise _Failure(exc.code or ERROR_SERVER_ERROR, exc.message,
                           NODATA if exc.data is None else exc.data) from None
        except Exception as exc:
            log.exception("RPC %s failed", name)
            raise _Failure(ERROR_INTERNAL_ERROR, "Internal error",
                           f"{type(exc).__name__}: {exc}") from None
        return result


class _Failure(Exception):
    """An error reply in the making: JSON-RPC ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = NODATA) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def _invalid_request(request: Any) -> str | None:
    """Why ``request`` is not a JSON-RPC 2.0 request object, or None when it is one."""
    if not isinstance(request, dict):
        return "a request must be a JSON object"
    if request.get("jsonrpc") != "2.0":
        return 'member "jsonrpc" must be exactly "2.0"'
    if not isinstance(request.get("method"), str):
        return 'member "method" must be a string'
    if "params" in request and not isinstance(request["params"], (list, dict)):
        return 'member "params" must be an array or an object'
    if "id" in request and not _valid_id(request["id"]):
        return 'member "id" must be a string, a number or null'
    return None
