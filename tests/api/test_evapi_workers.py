"""evapi with ``[core] workers`` above 1, in one test process: worker 0's module holds the
clients (real TCP on 127.0.0.1), worker 1's reaches them over the link (a Unix socket in
the run directory, :mod:`kamrouter.modules.evapi.link`)."""
from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from kamrouter.config import build_section
from kamrouter.modules.evapi import EvapiConfig, EvapiModule, NoController
from kamrouter.modules.evapi.framing import encode_netstring
from kamrouter.modules.evapi.link import SOCKET_NAME, encode
from kamrouter.modules.evapi.remote import RemoteEvapi
from kamrouter.net import Endpoint
from support.wait import await_until

from .conftest import ModuleHost
from .test_evapi_server import Controller, call

WAIT = 10.0


@pytest.fixture
def run_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ev") as path:  # Unix socket paths are short
        yield Path(path)


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


def worker(index: int, run_dir: Path) -> ModuleHost:
    host = ModuleHost(worker_index=index)
    host.settings.rpc.run_dir = str(run_dir)
    return host


async def start(host: ModuleHost, nursery: trio.Nursery, port: int = 0) -> EvapiModule:
    problems: list[str] = []
    config = build_section(EvapiConfig, {"bind_addr": f"127.0.0.1:{port}"}, "evapi", problems)
    assert not problems
    module = EvapiModule(host, config)
    await module.start(nursery)
    return module


def remote(module: EvapiModule) -> RemoteEvapi:
    assert isinstance(module.server, RemoteEvapi)
    return module.server


async def connect(first: EvapiModule, other: EvapiModule, clients: int) -> Controller:
    """A controller on worker 0, once worker 1 knows of it."""
    assert first.server.address is not None
    stream = await trio.open_tcp_stream(*first.server.address)
    await await_until(lambda: len(remote(other).tags) == clients, "worker 1 sees the client",
                      interval=0.001)
    return Controller(stream)


async def test_a_relay_of_worker_1_reaches_worker_0s_clients(
        run_dir: Path, nursery: trio.Nursery) -> None:
    zero, one = worker(0, run_dir), worker(1, run_dir)
    first = await start(zero, nursery)
    other = await start(one, nursery)
    zero.hooks["evapi:connection-new"] = lambda data: first.api().set_tag("billing")
    controller = await connect(first, other, 1)
    await await_until(lambda: remote(other).tags == ["billing"], "worker 1 learns the tag",
                      interval=0.001)
    assert other.api().relay({"from": 1}) == 1
    assert first.api().relay({"from": 0}) == 1
    received = {await controller.receive(), await controller.receive()}
    assert received == {b'{"from":1}', b'{"from":0}'}
    assert other.api().multicast("to billing", "billing") == 1
    assert await controller.receive() == b"to billing"
    assert other.api().unicast("to routing", "routing") == 0
    assert one.stat("evapi:dropped") == 1
    assert first.server.address is not None  # worker 1 never sends there either
    assert Endpoint("udp", *first.server.address) in one.own_endpoints
    await controller.send(b"not an answer")
    await await_until(lambda: any(e == "evapi:message-received" for e, _ in zero.events),
                      "the event in worker 0", interval=0.001)
    assert not one.events, "client messages run worker 0's event hooks"
    assert zero.stat("evapi:sent") == 3 and zero.stat("evapi:received") == 1


async def test_an_answer_resumes_the_worker_that_asked(run_dir: Path,
                                                       nursery: trio.Nursery) -> None:
    zero, one = worker(0, run_dir), worker(1, run_dir)
    first = await start(zero, nursery)
    other = await start(one, nursery)
    controller = await connect(first, other, 1)
    answers: dict[str, Any] = {}

    async def ask(name: str, module: EvapiModule, tlabel: int) -> None:
        answers[name] = await module.api().async_relay(call(9, tlabel), {"q": name},
                                                       timeout=WAIT)

    nursery.start_soon(ask, "one", other, 3)  # worker 1's labels: 1 modulo 2
    nursery.start_soon(ask, "zero", first, 4)
    asked = {}
    for _ in range(2):
        event = await controller.receive_json()
        asked[event["q"]] = event["id"]
    assert asked == {"one": "9:3", "zero": "9:4"}
    await controller.send({"id": "9:3", "routing": "one"})
    await controller.send({"tindex": 9, "tlabel": 4, "routing": "zero"})
    await await_until(lambda: len(answers) == 2, "both resumed", interval=0.001)
    assert answers["one"]["routing"] == "one" and answers["zero"]["routing"] == "zero"
    assert not zero.events[1:], "answers are not message-received events"


async def test_no_client_answers_at_once_and_a_leaving_one_ends_the_wait(
        run_dir: Path, nursery: trio.Nursery) -> None:
    zero, one = worker(0, run_dir), worker(1, run_dir)
    first = await start(zero, nursery)
    other = await start(one, nursery)
    await await_until(lambda: remote(other).ready.is_set(), "the link", interval=0.001)
    with trio.fail_after(1):  # not after the 60 s timeout
        assert await other.api().async_relay(call(1, 1), {}, timeout=60) is None
        with pytest.raises(NoController):
            await other.api().request("1:1", b"{}", 60)
    controller = await connect(first, other, 1)
    result: list[Any] = []

    async def ask() -> None:
        result.append(await other.api().async_relay(call(1, 3), {}, timeout=60))

    nursery.start_soon(ask)
    await controller.receive()
    await controller.stream.aclose()
    with trio.fail_after(WAIT):
        await await_until(lambda: result, "the wait ended", interval=0.001)
    assert result == [None]


async def test_a_restarted_worker_0_listens_again_and_worker_1_reaches_it(
        run_dir: Path, nursery: trio.Nursery) -> None:
    one = worker(1, run_dir)
    result: list[Any] = []

    async def ask() -> None:
        result.append(await other.api().async_relay(call(2, 5), {}, timeout=60))

    with trio.CancelScope() as first_life:
        async with trio.open_nursery() as zero_nursery:
            first = await start(worker(0, run_dir), zero_nursery)
            assert first.server.address is not None
            port = first.server.address[1]
            other = await start(one, nursery)
            controller = await connect(first, other, 1)
            nursery.start_soon(ask)
            await controller.receive()  # worker 1's request reached the client
            first_life.cancel()
    assert await controller.stream.receive_some(100) == b""
    await await_until(lambda: remote(other).link is None, "worker 1 sees it gone",
                      interval=0.001)
    with trio.fail_after(WAIT):  # its request ends as when the last client leaves
        await await_until(lambda: result, "the request ended", interval=0.001)
    assert result == [None]
    assert other.api().relay("lost") == 0
    first = await start(worker(0, run_dir), nursery, port)
    controller = await connect(first, other, 1)
    assert other.api().relay("again") == 1
    assert await controller.receive() == b"again"
    assert one.stat("evapi:drops_internal_error") == 0


async def test_garbage_on_the_link_is_counted_and_the_link_keeps_serving(
        run_dir: Path, nursery: trio.Nursery) -> None:
    zero = worker(0, run_dir)
    first = await start(zero, nursery)
    other = await start(worker(1, run_dir), nursery)
    controller = await connect(first, other, 1)
    stream = await trio.open_unix_socket(str(run_dir / SOCKET_NAME))
    frames = [encode_netstring(b"no header line"), encode_netstring(b"[1]\n"),
              encode({"op": "launch"}), encode({"op": "send", "tag": 7}, b"x"),
              encode({"op": "request"}), encode({"op": "forget", "id": ["x"]}),
              encode_netstring(b'{"op": ' + b"[" * 5000 + b"}\n")]
    await stream.send_all(b"".join(frames) + encode({"op": "send"}, b"still here"))
    assert await controller.receive() == b"still here"
    assert zero.stat("evapi:link_dropped_malformed") == len(frames)
    await stream.send_all(b"99999999999:")  # past the bound: this link is closed
    assert await stream.receive_some(65536)  # the client list it was sent on connect
    with trio.fail_after(WAIT):
        while await stream.receive_some(65536):
            pass
    assert other.api().relay("the other link is fine") == 1
    assert await controller.receive() == b"the other link is fine"
    # A link closed with what worker 0 sent it unread: a reset, not a bug.
    rude = await trio.open_unix_socket(str(run_dir / SOCKET_NAME))
    await trio.sleep(0.05)  # the client list is in its buffer
    rude.socket.close()
    assert other.api().relay("still fine") == 1
    assert await controller.receive() == b"still fine"
    assert zero.stat("evapi:drops_internal_error") == 0
