"""evapi's bounds over real TCP on 127.0.0.1: per-source client limit, idle timeout, the
shared-secret handshake, JSON limits and the last-resort guard of a connection."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
import trio.testing

from kamrouter.config import ConfigError
from kamrouter.modules.evapi import EvapiModule
from kamrouter.modules.evapi.framing import encode_netstring

from .conftest import ModuleHost
from .test_evapi_server import Controller, connect, start

TIMEOUT = 10


async def wait_until(condition, what: str) -> None:
    with trio.fail_after(TIMEOUT):
        while not condition():
            await trio.sleep(0.001)


async def closed(stream: trio.SocketStream) -> bool:
    """True when the server closes ``stream`` (within the timeout), reading all it sends."""
    with trio.fail_after(TIMEOUT):
        while True:
            try:
                if not await stream.receive_some(65536):
                    return True
            except trio.BrokenResourceError:
                return True


def secret_file(tmp_path: Path, secret: str = "s3cret", mode: int = 0o600) -> str:
    path = tmp_path / "evapi.secret"
    path.write_text(f"# shared with the controllers\n{secret}\n")
    os.chmod(path, mode)
    return str(path)


async def test_clients_per_source_address_are_limited(host: ModuleHost,
                                                      nursery: trio.Nursery) -> None:
    module = await start(host, nursery, max_clients=8, max_clients_per_ip=2)
    kept = [await connect(module, host, 1), await connect(module, host, 2)]
    third = await trio.open_tcp_stream(*module.server.address)
    assert await closed(third)
    assert host.stat("evapi:refused_clients") == 1 and host.stat("evapi:clients") == 2
    assert len(kept) == 2


async def test_idle_client_is_closed(host: ModuleHost, nursery: trio.Nursery,
                                     autojump_clock: trio.testing.MockClock) -> None:
    module = await start(host, nursery, idle_timeout=60.0)
    quiet = await connect(module, host, 1)
    chatty = await connect(module, host, 2)
    for _ in range(3):  # a newline now and then keeps a listening controller connected
        await trio.sleep(40)
        await chatty.stream.send_all(b"\n")
    assert await closed(quiet.stream)
    assert host.stat("evapi:closed_idle") == 1 and host.stat("evapi:clients") == 1


async def test_shared_secret_admits_only_clients_that_send_it(
        host: ModuleHost, nursery: trio.Nursery, tmp_path: Path) -> None:
    module = await start(host, nursery, secret_file=secret_file(tmp_path))
    wrong = await trio.open_tcp_stream(*module.server.address)
    await wrong.send_all(encode_netstring(b"guess"))
    assert await closed(wrong)
    right = Controller(await trio.open_tcp_stream(*module.server.address))
    # The secret and a first message in one write: the message is not lost.
    await right.stream.send_all(encode_netstring(b"s3cret") + encode_netstring(b"hello"))
    await wait_until(lambda: len(host.events) == 2, "events")
    assert [event for event, _ in host.events] == ["evapi:connection-new",
                                                    "evapi:message-received"]
    assert host.events[1][1]["msg"] == "hello"
    assert module.api().relay("x") == 1 and await right.receive() == b"x"
    assert host.stat("evapi:refused_auth") == 1


async def test_client_without_the_secret_sees_no_event_and_times_out(
        host: ModuleHost, nursery: trio.Nursery, tmp_path: Path,
        autojump_clock: trio.testing.MockClock) -> None:
    module = await start(host, nursery, secret_file=secret_file(tmp_path),
                         handshake_timeout=5.0)
    silent = await trio.open_tcp_stream(*module.server.address)
    await trio.sleep(1)
    assert module.api().relay("secret event") == 0
    assert await closed(silent)
    assert host.events == [] and host.stat("evapi:refused_auth") == 1


async def test_a_readable_secret_file_is_refused(host: ModuleHost, nursery: trio.Nursery,
                                                 tmp_path: Path) -> None:
    path = secret_file(tmp_path, mode=0o644)
    with pytest.raises(ConfigError, match=f"evapi.secret_file: {path} is readable by others"):
        await start(host, nursery, secret_file=path)


async def test_deep_json_message_is_dropped_and_the_connection_kept(
        host: ModuleHost, nursery: trio.Nursery) -> None:
    module: EvapiModule = await start(host, nursery, max_json_depth=8)
    controller = await connect(module, host, 1)
    await controller.send(b'{"a":' + b"[" * 9 + b"]" * 9 + b"}")
    await controller.send(b'{"a":' + b"[" * 7 + b"]" * 7 + b"}")
    await wait_until(lambda: len(host.events) == 2, "message event")
    assert host.events[1][1]["json"] == {"a": [[[[[[[]]]]]]]}
    assert host.stat("evapi:refused_json_limit") == 1


async def test_a_failing_connection_is_closed_counted_and_the_server_goes_on(
        host: ModuleHost, nursery: trio.Nursery) -> None:
    module = await start(host, nursery)

    def broken_hook(data: dict) -> None:
        raise RuntimeError("a bug")

    host.hooks["evapi:connection-new"] = broken_hook
    victim = await trio.open_tcp_stream(*module.server.address)
    assert await closed(victim)
    assert host.stat("evapi:drops_internal_error") == 1
    del host.hooks["evapi:connection-new"]
    await connect(module, host, 1)
