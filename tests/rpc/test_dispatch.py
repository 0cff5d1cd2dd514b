"""JSON-RPC 2.0 conformance of the dispatcher (the transports add framing only)."""
import json

import pytest
import trio

from kamrouter.rpc.dispatch import Dispatcher
from kamrouter.rpc.registry import MethodRegistry, RpcError


@pytest.fixture
def dispatcher() -> Dispatcher:
    registry = MethodRegistry()
    calls = []

    @registry.method("t.add")
    def add(a: int, b: int) -> int:
        """Adds two integers."""
        calls.append(("add", a, b))
        return a + b

    @registry.method("t.sleepy")
    async def sleepy(value: str) -> str:
        await trio.sleep(0)
        return value.upper()

    @registry.method("t.missing")
    def missing(key: str) -> None:
        raise RpcError(404, f"key {key!r} not found")

    @registry.method("t.broken")
    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    @registry.method("t.notjson")
    def notjson() -> object:
        return object()

    @registry.method("t.big")
    def big(size: int) -> str:
        return "x" * size

    @registry.method("t.record")
    def record(value: str) -> None:
        calls.append(("record", value))

    dispatcher = Dispatcher(registry)
    dispatcher.calls = calls  # type: ignore[attr-defined]
    return dispatcher


async def call(dispatcher: Dispatcher, request) -> object:
    payload = request if isinstance(request, bytes) else json.dumps(request).encode()
    reply = await dispatcher.handle(payload)
    return None if reply is None else json.loads(reply)


def req(method, params=None, id=1):
    request = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        request["params"] = params
    return request


async def test_success_positional_and_named(dispatcher):
    assert await call(dispatcher, req("t.add", [1, 2])) == {"jsonrpc": "2.0", "result": 3, "id": 1}
    assert await call(dispatcher, req("t.add", {"b": 2, "a": 5}, id="x")) == {
        "jsonrpc": "2.0", "result": 7, "id": "x"}


async def test_async_method(dispatcher):
    assert (await call(dispatcher, req("t.sleepy", ["hi"])))["result"] == "HI"


async def test_unknown_method(dispatcher):
    reply = await call(dispatcher, req("no.such"))
    assert reply["error"]["code"] == -32601
    assert reply["error"]["data"] == "no.such"
    assert reply["id"] == 1


async def test_bad_params_name_the_parameter(dispatcher):
    reply = await call(dispatcher, req("t.add", [1, "2"]))
    assert reply["error"]["code"] == -32602
    assert "parameter 'b' must be an integer" in reply["error"]["data"]
    reply = await call(dispatcher, req("t.add", [1]))
    assert "missing a required argument: 'b'" in reply["error"]["data"]


async def test_module_error_keeps_kamailio_code(dispatcher):
    reply = await call(dispatcher, req("t.missing", ["k"]))
    assert reply["error"] == {"code": 404, "message": "key 'k' not found"}


async def test_internal_errors(dispatcher):
    reply = await call(dispatcher, req("t.broken"))
    assert reply["error"]["code"] == -32603
    assert "ZeroDivisionError" in reply["error"]["data"]
    reply = await call(dispatcher, req("t.notjson"))
    assert reply["error"]["code"] == -32603


async def test_parse_error_has_null_id(dispatcher):
    reply = await call(dispatcher, b'{"jsonrpc": "2.0", "method": ')
    assert reply["error"]["code"] == -32700 and reply["id"] is None


@pytest.mark.parametrize("request_, problem", [
    ({"method": "t.add", "id": 3}, '"jsonrpc"'),
    ({"jsonrpc": "2.0", "method": 5, "id": 3}, '"method"'),
    ({"jsonrpc": "2.0", "method": "t.add", "params": "1,2", "id": 3}, '"params"'),
    ({"jsonrpc": "2.0", "method": "t.add", "id": [1]}, '"id"'),
    (42, "JSON object"),
])
async def test_invalid_request(dispatcher, request_, problem):
    reply = await call(dispatcher, request_)
    assert reply["error"]["code"] == -32600
    assert problem in reply["error"]["data"]
    assert reply["id"] == (3 if isinstance(request_, dict) and request_["id"] == 3 else None)


async def test_notification_runs_but_gets_no_reply(dispatcher):
    assert await call(dispatcher, {"jsonrpc": "2.0", "method": "t.record", "params": ["n"]}) is None
    assert ("record", "n") in dispatcher.calls
    # Even a failing notification is silent.
    assert await call(dispatcher, {"jsonrpc": "2.0", "method": "no.such"}) is None


async def test_batch_mixed(dispatcher):
    reply = await call(dispatcher, [
        req("t.add", [1, 1], id=1),
        {"jsonrpc": "2.0", "method": "t.record", "params": ["in batch"]},
        req("no.such", id=2),
        {"foo": "bar"},
        req("t.add", [2, "x"], id=3),
    ])
    assert [r.get("id") for r in reply] == [1, 2, None, 3]
    assert reply[0]["result"] == 2
    assert [r["error"]["code"] for r in reply[1:]] == [-32601, -32600, -32602]
    assert ("record", "in batch") in dispatcher.calls


async def test_batch_edge_cases(dispatcher):
    empty = await call(dispatcher, [])
    assert empty["error"]["code"] == -32600 and empty["id"] is None
    assert [r["error"]["code"] for r in await call(dispatcher, [1, 2])] == [-32600, -32600]
    notifications = [{"jsonrpc": "2.0", "method": "t.record", "params": [str(i)]} for i in range(3)]
    assert await call(dispatcher, notifications) is None


async def test_one_megabyte_reply(dispatcher):
    reply = await call(dispatcher, req("t.big", [1 << 20]))
    assert len(reply["result"]) == 1 << 20


async def test_reply_is_a_single_line(dispatcher):
    raw = await dispatcher.handle(json.dumps(req("t.sleepy", ["a\nb"])).encode())
    assert b"\n" not in raw
