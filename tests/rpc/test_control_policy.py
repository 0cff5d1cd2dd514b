"""The control plane's safety policy: the run directory, HTTP credentials, separate client
limits for HTTP and the Unix socket, and the ranges of the [rpc] keys."""
from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path

import httpx
import pytest
import trio

from kamrouter.config import ConfigError, build_section
from kamrouter.rpc.config import RpcConfig

from .test_server import LineClient, req, start

TOKEN = "4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c"


def auth_file(tmp_path: Path, mode: int = 0o600) -> str:
    path = tmp_path / "rpc.auth"
    path.write_text(f"# kamrouter HTTP RPC credentials\n{TOKEN}\nops:correct horse\n")
    os.chmod(path, mode)
    return str(path)


def http_config(rpc_config: RpcConfig, **changes: object) -> RpcConfig:
    return dataclasses.replace(rpc_config, http="127.0.0.1:0", **changes)


async def post(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, json=req("core.version"), headers=headers or {})


# -- run directory ------------------------------------------------------------------------

@pytest.mark.parametrize(("setup", "message"), [
    (lambda path: (os.makedirs(path), os.chmod(path, 0o777)),
     r"is writable by its group or others \(mode 0777\): chmod go-w"),
    (lambda path: (os.makedirs(path + ".real"), os.symlink(path + ".real", path)),
     "is a symbolic link; use a real directory"),
    (lambda path: (os.makedirs(path), os.chown(path, 65534, -1)),
     r"is owned by uid 65534, not by the router's user \(uid \d+\): remove it, or chown"),
    (lambda path: Path(path).write_text("squatted"), "exists and is not a directory"),
], ids=["world-writable", "symlink", "foreign-owner", "file"])
async def test_squatted_run_dir_is_refused(nursery, router, rpc_config, setup, message):
    if "chown" in message and os.geteuid() != 0:
        pytest.skip("needs root to create a directory owned by another user")
    setup(rpc_config.run_dir)
    with pytest.raises(ConfigError, match=f"rpc.run_dir: {rpc_config.run_dir} {message}"):
        await start(nursery, router, rpc_config)


async def test_existing_private_run_dir_is_used(nursery, router, rpc_config):
    os.makedirs(rpc_config.run_dir, mode=0o755)
    listening = await start(nursery, router, rpc_config)
    client = await LineClient.connect(listening.stream_socket)
    assert "result" in await client.call(req("core.version"))


# -- HTTP credentials ---------------------------------------------------------------------

async def test_http_without_credentials_gets_401(nursery, router, rpc_config, tmp_path):
    listening = await start(nursery, router, http_config(
        rpc_config, http_auth_file=auth_file(tmp_path)))
    url = "http://{}:{}/RPC".format(*listening.http)
    refused = await post(url)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer realm=")
    assert (await post(url, {"Authorization": "Bearer wrong"})).status_code == 401
    assert (await post(url, {"Authorization": "Basic !!!"})).status_code == 401
    assert router.stats.get("rpc", "refused_auth").value == 3
    bearer = await post(url, {"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200 and "result" in bearer.json()
    basic = base64.b64encode(b"ops:correct horse").decode()
    assert (await post(url, {"Authorization": f"Basic {basic}"})).status_code == 200
    async with httpx.AsyncClient() as client:  # /metrics needs the credentials too
        metrics_url = "http://{}:{}/metrics".format(*listening.http)
        assert (await client.get(metrics_url)).status_code == 401
        assert (await client.get(metrics_url, headers={
            "Authorization": f"Bearer {TOKEN}"})).status_code == 200


async def test_non_loopback_http_needs_credentials(nursery, router, rpc_config, tmp_path):
    with pytest.raises(ConfigError, match="rpc.http: 0.0.0.0 is not a loopback address: "
                                          "set rpc.http_auth_file"):
        await start(nursery, router, dataclasses.replace(rpc_config, http="0.0.0.0:0"))
    with pytest.raises(ConfigError, match="rpc.http_auth_file: .* is readable by others"):
        await start(nursery, router, http_config(
            rpc_config, http_auth_file=auth_file(tmp_path, 0o644)))


# -- separate client limits -----------------------------------------------------------------

async def test_http_clients_cannot_lock_out_the_unix_socket(nursery, router, rpc_config):
    listening = await start(nursery, router, http_config(rpc_config, http_max_clients=2,
                                                         max_clients=2))
    host, port = listening.http
    hogs = [await trio.open_tcp_stream(host, port) for _ in range(3)]
    with trio.fail_after(10):  # the third HTTP connection is refused with a 503
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = await hogs[2].receive_some(4096)
            assert chunk
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 503")
    local = await LineClient.connect(listening.stream_socket)
    assert "result" in await local.call(req("core.version"))
    assert router.stats.get("rpc", "refused_clients").value == 1
    for hog in hogs:
        await hog.aclose()


# -- ranges -------------------------------------------------------------------------------

def test_rpc_ranges_name_the_key():
    problems: list[str] = []
    build_section(RpcConfig, {"client_timeout": -1, "idle_timeout": 0, "max_clients": 0,
                              "http_max_clients": 100000, "max_json_depth": 1,
                              "max_json_digits": 5000, "max_request_size": 10}, "rpc", problems)
    assert problems == [
        "rpc.max_request_size: must be between 256 and 67108864 bytes, got 10",
        "rpc.max_clients: must be between 1 and 10000, got 0",
        "rpc.http_max_clients: must be between 1 and 10000, got 100000",
        "rpc.client_timeout: must be between 0.1 and 3600 s, got -1",
        "rpc.idle_timeout: must be between 1 and 86400 s, got 0",
        "rpc.max_json_depth: must be between 2 and 512, got 1",
        "rpc.max_json_digits: must be between 20 and 1000, got 5000",
    ]
