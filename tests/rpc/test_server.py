"""The transports, served by serve_rpc under trio with a stand-in router."""
from __future__ import annotations

import dataclasses
import grp
import json
import os
import socket
import stat

import httpx
import pytest
import trio

from kamrouter.config import ConfigError
from kamrouter.rpc.server import Listening, serve_rpc


def req(method, *params, id=1) -> dict:
    return {"jsonrpc": "2.0", "method": method, "params": list(params), "id": id}


async def start(nursery, router, config) -> Listening:
    return await nursery.start(lambda task_status: serve_rpc(
        config, router.rpc, stats=router.stats, task_status=task_status))


class LineClient:
    """A Unix stream socket client reading newline-terminated replies."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def connect(cls, path: str) -> LineClient:
        return cls(await trio.open_unix_socket(path))

    async def send(self, data: bytes | dict | list) -> None:
        await self.stream.send_all(data if isinstance(data, bytes) else json.dumps(data).encode())

    async def reply(self):
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    async def call(self, data):
        await self.send(data)
        return await self.reply()


@pytest.fixture
def big_method(router):
    router.rpc.register("test.big", lambda size: "x" * size)


async def test_default_socket_and_file_modes(nursery, router, rpc_config):
    listening = await start(nursery, router, rpc_config)
    assert listening.stream_socket == f"{rpc_config.run_dir}/kamrouter_rpc.sock"
    assert (listening.dgram_socket, listening.fifo, listening.http) == (None, None, None)
    assert str(listening) == f"stream socket {listening.stream_socket}"  # as logged
    assert stat.S_IMODE(os.stat(rpc_config.run_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(listening.stream_socket).st_mode) == 0o660
    client = await LineClient.connect(listening.stream_socket)
    assert (await client.call(req("core.uptime")))["result"]["uptime"] >= 0


async def test_socket_removed_on_shutdown(router, rpc_config):
    async with trio.open_nursery() as nursery:
        listening = await start(nursery, router, rpc_config)
        nursery.cancel_scope.cancel()
    assert not os.path.exists(listening.stream_socket)


async def test_stream_pipelining_pretty_documents_and_notifications(nursery, router, rpc_config):
    listening = await start(nursery, router, rpc_config)
    client = await LineClient.connect(listening.stream_socket)
    await client.send(json.dumps(req("core.echo", "a", id=1)).encode()
                      + json.dumps({"jsonrpc": "2.0", "method": "core.echo"}).encode()
                      + json.dumps(req("core.echo", "}{", id=2), indent=4).encode() + b"\n")
    assert (await client.reply())["id"] == 1
    assert await client.reply() == {"jsonrpc": "2.0", "result": ["}{"], "id": 2}


async def test_stream_conformance(nursery, router, rpc_config, big_method):
    listening = await start(nursery, router, rpc_config)
    client = await LineClient.connect(listening.stream_socket)
    batch = await client.call([req("core.echo", 1, id=1), req("no.such", id=2),
                               {"jsonrpc": "2.0", "method": "core.echo"},
                               req("stats.fetch", [], id=3)])
    assert [r["id"] for r in batch] == [1, 2, 3]
    assert [r.get("error", {}).get("code") for r in batch] == [None, -32601, -32602]
    assert "selectors[0]" in batch[2]["error"]["data"]
    big = await client.call(req("test.big", 1 << 20, id=4))
    assert len(big["result"]) == 1 << 20
    assert (await client.call(b"{oops}\n"))["error"]["code"] == -32700


async def test_half_closed_client_gets_its_reply(nursery, router, rpc_config):
    listening = await start(nursery, router, rpc_config)
    client = await LineClient.connect(listening.stream_socket)
    await client.send(req("core.version"))
    await client.stream.send_eof()
    assert (await client.reply())["result"].startswith("kamrouter")
    assert await client.reply() is None


async def test_stalled_clients_do_not_block_others(nursery, router, rpc_config, big_method):
    listening = await start(nursery, router, rpc_config)
    half_sent = await LineClient.connect(listening.stream_socket)
    await half_sent.send(b'{"jsonrpc": "2.0", "method": "core.ver')
    not_reading = await LineClient.connect(listening.stream_socket)
    await not_reading.send(req("test.big", 8 << 20))
    with trio.fail_after(10):  # a guard against hanging, not a timing assertion
        for _ in range(3):
            client = await LineClient.connect(listening.stream_socket)
            assert "result" in await client.call(req("core.uptime"))


async def test_idle_and_mid_request_timeouts(nursery, router, rpc_config, autojump_clock):
    listening = await start(nursery, router, rpc_config)
    idle = await LineClient.connect(listening.stream_socket)
    assert await idle.reply() is None  # closed by the server after idle_timeout
    stalled = await LineClient.connect(listening.stream_socket)
    await stalled.send(b'{"jsonrpc"')
    assert await stalled.reply() is None


async def test_request_size_and_client_limits(nursery, router, rpc_config):
    config = dataclasses.replace(rpc_config, max_request_size=1000, max_clients=1)
    listening = await start(nursery, router, config)
    first = await LineClient.connect(listening.stream_socket)
    assert "result" in await first.call(req("core.version"))
    second = await LineClient.connect(listening.stream_socket)
    refused = await second.reply()
    assert "too many" in refused["error"]["data"]
    too_big = await first.call(json.dumps(req("core.echo", "x" * 2000)).encode())
    assert too_big["error"]["code"] == -32600 and "larger than 1000" in too_big["error"]["data"]
    assert await first.reply() is None


async def test_stale_socket_is_replaced_and_live_one_refused(router, rpc_config):
    os.makedirs(rpc_config.run_dir, mode=0o700)
    path = f"{rpc_config.run_dir}/kamrouter_rpc.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()
    async with trio.open_nursery() as nursery:
        await start(nursery, router, rpc_config)
        with pytest.raises(ConfigError, match="in use by a running process"):
            await start(nursery, router, rpc_config)
        nursery.cancel_scope.cancel()


async def test_ownership_and_config_errors(nursery, router, rpc_config):
    group = grp.getgrgid(os.getgid()).gr_name
    listening = await start(nursery, router, dataclasses.replace(
        rpc_config, mode=0o600, group=group))
    assert stat.S_IMODE(os.stat(listening.stream_socket).st_mode) == 0o600
    assert os.stat(listening.stream_socket).st_gid == os.getgid()
    with pytest.raises(ConfigError, match="rpc.user: no such user 'no-such-user-x'"):
        await start(nursery, router, dataclasses.replace(rpc_config, user="no-such-user-x"))
    with pytest.raises(ConfigError, match="rpc.http: expected"):
        await start(nursery, router, dataclasses.replace(rpc_config, http="localhost:http"))


async def test_datagram_socket(nursery, router, rpc_config, big_method):
    config = dataclasses.replace(rpc_config, stream_socket="", dgram_socket="kamrouter_rpc.dgram")
    listening = await start(nursery, router, config)
    assert listening.stream_socket is None
    assert stat.S_IMODE(os.stat(listening.dgram_socket).st_mode) == 0o660
    plain = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    plain.bind("")  # an abstract autobind address, as kamcli uses
    client = trio.socket.from_stdlib_socket(plain)
    await client.sendto(json.dumps({"jsonrpc": "2.0", "method": "core.echo"}).encode(),
                        listening.dgram_socket)
    await client.sendto(json.dumps(req("core.echo", "d", id=7)).encode(), listening.dgram_socket)
    assert json.loads(await client.recv(1 << 16)) == {"jsonrpc": "2.0", "result": ["d"], "id": 7}
    await client.sendto(json.dumps(req("test.big", 8 << 20, id=8)).encode(),
                        listening.dgram_socket)
    too_big = json.loads(await client.recv(1 << 16))
    assert too_big["id"] == 8 and "use the stream socket" in too_big["error"]["data"]


async def test_fifo_with_reply_name(nursery, router, rpc_config, run_dir):
    reply_dir = f"{run_dir}/replies"
    os.mkdir(reply_dir)
    config = dataclasses.replace(rpc_config, stream_socket="", fifo="kamrouter_rpc.fifo",
                                 fifo_reply_dir=reply_dir)
    listening = await start(nursery, router, config)
    assert stat.S_ISFIFO(os.stat(listening.fifo).st_mode)
    os.mkfifo(f"{reply_dir}/r1.fifo", 0o600)
    reply_fd = os.open(f"{reply_dir}/r1.fifo", os.O_RDONLY | os.O_NONBLOCK)
    async with trio.lowlevel.FdStream(reply_fd) as replies, \
            trio.lowlevel.FdStream(os.open(listening.fifo, os.O_WRONLY)) as requests:
        request = req("core.echo", "via fifo", id=5) | {"reply_name": "r1.fifo"}
        await requests.send_all(json.dumps(request, indent=2).encode())
        data = b""
        while not data.endswith(b"\n"):
            data += await replies.receive_some(1 << 16)
    assert json.loads(data) == {"jsonrpc": "2.0", "result": ["via fifo"], "id": 5}


async def test_http_rpc_and_metrics(nursery, router, rpc_config):
    router.stats.counter("core", "rcv_requests").value = 42
    listening = await start(nursery, router, dataclasses.replace(rpc_config, http="0"))
    host, port = listening.http
    assert host == "127.0.0.1"
    assert str(listening).endswith(f", http://127.0.0.1:{port}/RPC")
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        reply = await client.post("/RPC", json=req("stats.fetchn", "core:rcv_requests"))
        assert reply.json()["result"] == {"core.rcv_requests": 42}
        assert reply.headers["content-type"] == "application/json"
        batch = await client.post("/RPC", json=[req("core.version", id=1), req("x.y", id=2)])
        assert [r["id"] for r in batch.json()] == [1, 2]
        notification = await client.post("/RPC", json={"jsonrpc": "2.0", "method": "core.echo"})
        assert notification.status_code == 204
        metrics = await client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "kamrouter_core_rcv_requests_total 42\n" in metrics.text
        assert (await client.get("/RPC")).status_code == 405
        assert (await client.get("/nope")).status_code == 404


async def test_http_port_in_use_is_a_config_error(nursery, router, rpc_config):
    listening = await start(nursery, router, dataclasses.replace(rpc_config, http="0"))
    with pytest.raises(ConfigError, match="rpc.http: cannot listen"):
        await start(nursery, router, dataclasses.replace(
            rpc_config, stream_socket="other.sock", http=str(listening.http[1])))
