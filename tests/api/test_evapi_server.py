"""The evapi module over real TCP on 127.0.0.1 (port chosen by the kernel)."""
from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from kamrouter.config import ConfigError, build_section
from kamrouter.modules.evapi import EvapiConfig, EvapiModule
from kamrouter.modules.evapi.framing import NetstringDecoder, encode_netstring

from support.wait import await_until

from .conftest import ModuleHost


class Controller:
    """A test controller speaking netstrings."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = NetstringDecoder()
        self.pending: list[bytes] = []

    async def send(self, data: bytes | dict[str, Any]) -> None:
        if isinstance(data, dict):
            data = json.dumps(data).encode()
        await self.stream.send_all(encode_netstring(data))

    async def receive(self) -> bytes:
        while not self.pending:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise EOFError
            self.pending += self.decoder.feed(chunk)
        return self.pending.pop(0)

    async def receive_json(self) -> dict[str, Any]:
        return json.loads(await self.receive())


async def start(host: ModuleHost, nursery: trio.Nursery, **options: Any) -> EvapiModule:
    problems: list[str] = []
    config = build_section(EvapiConfig, {"bind_addr": "127.0.0.1:0", **options}, "evapi",
                           problems)
    assert not problems
    module = EvapiModule(host, config)
    await module.start(nursery)
    return module


async def connect(module: EvapiModule, host: ModuleHost, expected_clients: int) -> Controller:
    stream = await trio.open_tcp_stream(*module.server.address)
    await await_until(lambda: host.stat("evapi:clients") >= expected_clients,
                      f"{expected_clients} evapi clients", interval=0.001)
    return Controller(stream)


def call(tindex: int, tlabel: int) -> Any:
    return SimpleNamespace(tindex=tindex, tlabel=tlabel)


def test_config_validation_names_keys() -> None:
    problems: list[str] = []
    build_section(EvapiConfig, {"bind_addr": "localhost", "max_clients": 0}, "evapi", problems)
    assert problems == ["evapi.bind_addr: expected host:port, got 'localhost'",
                        "evapi.max_clients: must be between 1 and 10000, got 0"]


async def test_address_in_use_is_a_config_error_naming_the_key(
        host: ModuleHost, nursery: trio.Nursery) -> None:
    first = await start(host, nursery)
    host, port = first.server.address
    taken = f"{host}:{port}"
    with pytest.raises(ConfigError) as info:
        await start(ModuleHost(), nursery, bind_addr=taken)
    assert info.value.problems == [f"evapi.bind_addr: cannot listen on {taken}: "
                                   "Address already in use"]


async def test_relay_reaches_every_client_and_events_fire(host: ModuleHost,
                                                          nursery: trio.Nursery) -> None:
    module = await start(host, nursery)
    api = module.api()
    one = await connect(module, host, 1)
    two = await connect(module, host, 2)
    assert api.relay({"event": "hello"}) == 2
    assert await one.receive() == b'{"event":"hello"}'
    assert await two.receive() == b'{"event":"hello"}'
    assert [e for e, _ in host.events] == ["evapi:connection-new", "evapi:connection-new"]
    assert host.events[0][1]["conidx"] == 0 and host.events[1][1]["srcaddr"] == "127.0.0.1"
    await two.send(b"plain text")
    await await_until(lambda: len(host.events) >= 3, "the message event", interval=0.001)
    event, data = host.events[2]
    assert event == "evapi:message-received" and data["msg"] == "plain text"
    assert data["conidx"] == 1 and data["json"] is None
    assert host.stat("evapi:sent") == 2 and host.stat("evapi:received") == 1
    await two.stream.aclose()
    await await_until(lambda: len(host.events) >= 4, "the close event", interval=0.001)
    assert host.events[3][0] == "evapi:connection-closed"
    assert host.stat("evapi:clients") == 1
    assert [c["conidx"] for c in host.rpc.get("evapi.list").func()] == [0]


async def test_tags_select_clients(host: ModuleHost, nursery: trio.Nursery) -> None:
    module = await start(host, nursery)
    api = module.api()
    tags = iter(["billing", "routing", "routing"])
    host.hooks["evapi:connection-new"] = lambda data: api.set_tag(next(tags))
    billing = await connect(module, host, 1)
    routing_a = await connect(module, host, 2)
    routing_b = await connect(module, host, 3)
    assert api.multicast("m", "routing") == 2
    assert api.unicast("u", "routing") == 1
    assert api.unicast("b", "billing") == 1
    assert api.multicast("nobody", "sales") == 0
    assert await routing_a.receive() == b"m" and await routing_a.receive() == b"u"
    assert await routing_b.receive() == b"m"
    assert await billing.receive() == b"b"
    assert host.stat("evapi:dropped") == 1
    with pytest.raises(RuntimeError, match="only inside an evapi"):
        api.set_tag("outside")
    failures: list[Exception] = []

    def bad_tag(data: dict[str, Any]) -> None:
        try:
            api.set_tag("x" * 64)
        except ValueError as exc:
            failures.append(exc)

    host.hooks["evapi:connection-new"] = bad_tag
    await connect(module, host, 4)
    assert "1-63 chars" in str(failures[0])


async def test_close_in_connection_new_refuses(host: ModuleHost, nursery: trio.Nursery) -> None:
    module = await start(host, nursery)
    host.hooks["evapi:connection-new"] = lambda data: module.api().close()
    stream = await trio.open_tcp_stream(*module.server.address)
    assert await stream.receive_some(10) == b""
    assert host.stat("evapi:clients") == 0


async def test_max_clients(host: ModuleHost, nursery: trio.Nursery) -> None:
    module = await start(host, nursery, max_clients=1)
    first = await connect(module, host, 1)
    second = await trio.open_tcp_stream(*module.server.address)
    assert await second.receive_some(10) == b""
    assert module.api().relay("x") == 1 and await first.receive() == b"x"


async def test_full_queue_drops_without_blocking(host: ModuleHost, nursery: trio.Nursery) -> None:
    module = await start(host, nursery, queue_size=2)
    controller = await connect(module, host, 1)
    await trio.testing.wait_all_tasks_blocked()
    # the idle writer takes one event, two wait in the queue; with no checkpoint between
    # the sends the writer cannot drain more, so the rest are dropped
    assert [module.api().relay(str(i)) for i in range(5)] == [1, 1, 1, 0, 0]
    assert host.stat("evapi:dropped") == 2
    assert module.rpc_list()[0]["dropped"] == 2
    assert [await controller.receive() for _ in range(3)] == [b"0", b"1", b"2"]


async def test_a_client_that_stops_reading_is_dropped(
        host: ModuleHost, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    module = await start(host, nursery, queue_size=1000, send_timeout=1.0)
    stalled = await connect(module, host, 1)  # connected, never reads
    chunk = b"x" * 65536
    queued = [module.api().relay(chunk) for _ in range(500)]  # 32 MB: more than the kernel
    assert queued == [1] * 500                                 # buffers, and no waiting here
    await await_until(lambda: not host.stat("evapi:clients"), "the stalled client dropped",
                      interval=0.1)
    assert host.events[-1][0] == "evapi:connection-closed"
    assert 0 < host.stat("evapi:sent") < 500
    await stalled.stream.aclose()


async def test_async_relay_resumes_with_the_matching_answer(host: ModuleHost,
                                                            nursery: trio.Nursery) -> None:
    module = await start(host, nursery)
    api = module.api()
    controller = await connect(module, host, 1)
    answers: dict[str, Any] = {}

    async def ask(name: str, tindex: int) -> None:
        answers[name] = await api.async_relay(call(tindex, 7), {"event": "sip-routing"},
                                              timeout=30)

    nursery.start_soon(ask, "a", 1)
    nursery.start_soon(ask, "b", 2)
    first, second = await controller.receive_json(), await controller.receive_json()
    assert {first["id"], second["id"]} == {"1:7", "2:7"}
    assert first["event"] == "sip-routing" and {first["tindex"], second["tindex"]} == {1, 2}
    await controller.send({"id": "2:7", "routing": "serial"})     # answered by id
    await controller.send({"tindex": 1, "tlabel": 7, "n": 1})     # answered by tindex/tlabel
    await controller.send({"tindex": 1, "tlabel": 7, "n": 2})     # late duplicate: an event
    await await_until(lambda: len(answers) >= 2 and len(host.events) >= 2,
                      "both answers and the late duplicate", interval=0.001)
    assert answers["a"] == {"tindex": 1, "tlabel": 7, "n": 1}
    assert answers["b"] == {"id": "2:7", "routing": "serial"}
    assert host.events[-1][0] == "evapi:message-received"
    assert host.events[-1][1]["json"] == {"tindex": 1, "tlabel": 7, "n": 2}


async def test_async_relay_without_client_returns_at_once(
        host: ModuleHost, nursery: trio.Nursery, mock_clock: trio.testing.MockClock) -> None:
    module = await start(host, nursery)
    before = trio.current_time()
    assert await module.api().async_relay(call(1, 1), {"x": 1}, timeout=60) is None
    assert trio.current_time() == before
    assert host.stat("evapi:timeouts") == 0 and host.stat("evapi:dropped") == 1


async def test_async_relay_timeout(host: ModuleHost, nursery: trio.Nursery,
                                   autojump_clock: trio.testing.MockClock) -> None:
    module = await start(host, nursery)
    controller = await connect(module, host, 1)
    before = trio.current_time()
    assert await module.api().async_relay(call(3, 4), "3:4 please", timeout=2.5) is None
    assert trio.current_time() - before == pytest.approx(2.5)
    assert host.stat("evapi:timeouts") == 1
    assert await controller.receive() == b"3:4 please"


async def test_controller_leaving_wakes_waiters(host: ModuleHost, nursery: trio.Nursery) -> None:
    module = await start(host, nursery)
    controller = await connect(module, host, 1)
    result: list[Any] = []

    async def ask() -> None:
        result.append(await module.api().async_relay(call(5, 5), {}, timeout=60))

    nursery.start_soon(ask)
    await controller.receive()
    await controller.stream.aclose()
    await await_until(lambda: result, "async_relay resuming", interval=0.001)
    assert result == [None] and host.stat("evapi:timeouts") == 0


async def test_malformed_netstring_closes_the_connection(host: ModuleHost,
                                                         nursery: trio.Nursery) -> None:
    module = await start(host, nursery)
    controller = await connect(module, host, 1)
    await controller.stream.send_all(b"abc:def,")
    assert await controller.stream.receive_some(10) == b""


async def test_raw_format(host: ModuleHost, nursery: trio.Nursery) -> None:
    module = await start(host, nursery, netstring_format=False)
    controller = await connect(module, host, 1)
    module.api().relay('{"a":1}')
    assert await controller.stream.receive_some(100) == b'{"a":1}'
    await controller.stream.send_all(b"hello")
    await await_until(lambda: any(e == "evapi:message-received" for e, _ in host.events),
                      "the raw message event", interval=0.001)
    assert host.events[-1][1]["msg"] == "hello"
