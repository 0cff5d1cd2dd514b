"""http_client against a real HTTP server on 127.0.0.1 (stdlib, in a thread)."""
from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trio

from kamrouter.config import build_section
from kamrouter.modules.http_client import (
    HttpClientApi,
    HttpClientConfig,
    HttpClientModule,
    HttpError,
    JsonRpcError,
    escape_param,
    escape_query,
    escape_user,
    unescape,
)

from kamrouter.modules.http_client.pool import ConnectionPool

from support.wait import await_until

from .conftest import ModuleHost


class Peer(ThreadingHTTPServer):
    daemon_threads = True
    scheme = "http"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.client_ports: set[int] = set()
        self.release = threading.Event()   # ends /hang, which never answers
        self.closed = threading.Semaphore(0)  # released each time a connection is closed

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        super().shutdown_request(request)
        self.closed.release()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive
    server: Peer

    def log_message(self, *args: object) -> None:
        pass

    def answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Test", "yes")
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self) -> None:
        self.server.client_ports.add(self.client_address[1])
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path == "/hang":
            self.server.release.wait()  # never answers: the client gave up long ago
            self.close_connection = True
        elif self.path == "/rpc":
            call = json.loads(body)
            if call["method"] == "add":
                reply = {"jsonrpc": "2.0", "id": call["id"], "result": sum(call["params"])}
            else:
                reply = {"jsonrpc": "2.0", "id": call["id"],
                         "error": {"code": -32601, "message": "Method not found"}}
            self.answer(200, json.dumps(reply).encode())
        elif self.path == "/targets":
            self.answer(200, b"sip:a@127.0.0.1:5071|sip:b@127.0.0.1:5072\nsecond line",
                        "text/plain")
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"4\r\nsip:\r\n9\r\na@example\r\n0\r\n\r\n")
        elif self.path == "/close-after":  # closes the connection without saying so
            self.close_connection = True
            self.answer(200, b"{}")
        elif self.path == "/garbage":
            self.close_connection = True
            self.wfile.write(b"this is not HTTP\r\n\r\n")
        else:
            echo = {"method": self.command, "path": self.path, "body": body.decode(),
                    "content_type": self.headers.get("Content-Type"),
                    "agent": self.headers.get("User-Agent"), "x": self.headers.get("X-Q")}
            self.answer(404 if self.path == "/missing" else 200, json.dumps(echo).encode())

    do_GET = do_POST = do_PUT = handle_any


@pytest.fixture
def peer() -> Iterator[Peer]:
    server = Peer()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
async def http(host: ModuleHost) -> AsyncIterator[HttpClientModule]:
    problems: list[str] = []
    config = build_section(HttpClientConfig, {"user_agent": "kr-test"}, "http_client", problems)
    module = HttpClientModule(host, config)
    yield module
    await module.stop()


async def test_get_post_headers_and_keepalive(http: HttpClientModule, peer: Peer,
                                              host: ModuleHost) -> None:
    api = http.api()
    got = await api.query(peer.url + "/echo?x=1", headers={"X-Q": "q"})
    assert got.status == 200 and got.ok and got.error is None
    assert got.headers["x-test"] == "yes"
    assert got.json() == {"method": "GET", "path": "/echo?x=1", "body": "",
                          "content_type": None, "agent": "kr-test", "x": "q"}
    posted = await api.query(peer.url + "/echo", "POST", {"callee": "+4930"})
    assert posted.json()["body"] == '{"callee":"+4930"}'
    assert posted.json()["content_type"] == "application/json"
    text = await api.query(peer.url + "/echo", "PUT", "raw")
    assert text.json()["body"] == "raw" and text.json()["method"] == "PUT"
    missing = await api.query(peer.url + "/missing")
    assert missing.status == 404 and not missing.ok
    assert len(peer.client_ports) == 1, "the pooled connection was reused"
    assert host.stat("httpclient:connections") == 4 and host.stat("httpclient:connok") == 4


async def test_first_line_of_a_pipe_separated_answer(http: HttpClientModule, peer: Peer) -> None:
    got = await http.api().query(peer.url + "/targets")
    assert got.first_line.split("|") == ["sip:a@127.0.0.1:5071", "sip:b@127.0.0.1:5072"]


async def test_chunked_answer(http: HttpClientModule, peer: Peer) -> None:
    assert (await http.api().query(peer.url + "/chunked")).body == "sip:a@example"


async def test_a_connection_the_server_closed_while_idle_is_retried_on_a_new_one(
        http: HttpClientModule, peer: Peer) -> None:
    api = http.api()
    assert (await api.query(peer.url + "/close-after")).status == 200
    await trio.to_thread.run_sync(peer.closed.acquire)
    assert (await api.query(peer.url + "/echo")).status == 200
    assert len(peer.client_ports) == 2


async def test_an_answer_that_is_not_http_is_a_protocol_error(
        http: HttpClientModule, peer: Peer) -> None:
    got = await http.api().query(peer.url + "/garbage")
    assert (got.status, got.error) == (0, "protocol")
    assert (await http.api().query(peer.url + "/echo")).status == 200


async def test_a_url_that_is_not_http_is_refused(http: HttpClientModule) -> None:
    with pytest.raises(ValueError, match="expected an http:// or https:// URL, got 'ftp://x/'"):
        await http.api().query("ftp://x/")


async def test_connect_refused_is_reported_not_raised(http: HttpClientModule,
                                                      host: ModuleHost) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    got = await http.api().query(f"http://127.0.0.1:{port}/")
    assert (got.status, got.error) == (0, "connect")
    assert host.stat("httpclient:connfail") == 1 and host.stat("httpclient:timeouts") == 0


def pool_client(host: ModuleHost, now: list[float], **limits: int) -> HttpClientApi:
    """A client on a pool with the given limits whose idle clock reads ``now[0]``."""
    settings = {"max_connections": 10, "max_keepalive": 10, "keepalive_expiry": 30, **limits}
    pool = ConnectionPool(verify_tls=True, clock=lambda: now[0], **settings)
    return HttpClientApi(pool, HttpClientConfig(), host)


async def test_idle_connections_expire_and_are_kept_only_up_to_max_keepalive(
        peer: Peer, host: ModuleHost) -> None:
    now = [0.0]
    kept = pool_client(host, now)
    for _ in range(2):
        assert (await kept.query(peer.url + "/echo")).status == 200
    assert len(peer.client_ports) == 1
    now[0] += 31  # past keepalive_expiry
    assert (await kept.query(peer.url + "/echo")).status == 200
    assert len(peer.client_ports) == 2
    unkept = pool_client(host, now, max_keepalive=0)
    for _ in range(2):
        assert (await unkept.query(peer.url + "/echo")).status == 200
    assert len(peer.client_ports) == 4


async def test_max_connections_makes_a_query_wait_for_a_free_one(
        peer: Peer, host: ModuleHost) -> None:
    client = pool_client(host, [0.0], max_connections=1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.query, peer.url + "/hang", "GET", None, None, 3.0)
        # Once the peer has its connection, the first query holds the only one (for 3 s).
        await await_until(lambda: peer.client_ports, "the first query connected")
        waiting = await client.query(peer.url + "/echo", timeout=0.3)
    assert (waiting.status, waiting.error) == (0, "timeout")
    assert len(peer.client_ports) == 1, "no second connection was opened"


async def test_timeout(http: HttpClientModule, peer: Peer, host: ModuleHost) -> None:
    got = await http.api().query(peer.url + "/hang", timeout=0.2)
    assert (got.status, got.error) == (0, "timeout")
    assert host.stat("httpclient:timeouts") == 1


async def test_jsonrpc(http: HttpClientModule, peer: Peer) -> None:
    api = http.api()
    assert await api.jsonrpc(peer.url + "/rpc", "add", [1, 2, 3]) == 6
    with pytest.raises(JsonRpcError) as info:
        await api.jsonrpc(peer.url + "/rpc", "nope")
    assert (info.value.code, info.value.message) == (-32601, "Method not found")
    with pytest.raises(HttpError) as bad:
        await api.jsonrpc(peer.url + "/echo", "x")
    assert bad.value.kind == "invalid"
    with pytest.raises(HttpError) as status:
        await api.jsonrpc(peer.url + "/missing", "x")
    assert status.value.kind == "status"


@pytest.fixture
def tls_peer(tmp_path: Path) -> Iterator[Peer]:
    """The peer over TLS, with a self-signed certificate made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Peer()
    server.scheme = "https"
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_https(host: ModuleHost, tls_peer: Peer) -> None:
    trusting = HttpClientModule(host, HttpClientConfig(verify_tls=False))
    got = await trusting.api().query(tls_peer.url + "/echo", "POST", {"a": 1})
    assert got.status == 200 and got.json()["body"] == '{"a":1}'
    await trusting.stop()
    verifying = HttpClientModule(ModuleHost(), HttpClientConfig())
    refused = await verifying.api().query(tls_peer.url + "/echo")
    assert refused.error == "connect" and "CERTIFICATE_VERIFY_FAILED" in refused.detail
    await verifying.stop()


def test_config_validation() -> None:
    problems: list[str] = []
    build_section(HttpClientConfig, {"timeout": 0, "max_keepalive": -1}, "http_client", problems)
    assert problems == ["http_client.timeout: must be between 0.01 and 300 s, got 0",
                        "http_client.max_keepalive: must be between 0 and 10000, got -1"]


@pytest.mark.parametrize(("value", "param", "user"), [
    ("abc-_.!~*'()", "abc-_.!~*'()", "abc-_.!~*'()"),
    ("a b", "a%20b", "a%20b"),
    ("[x]/:&+$", "[x]/:&+$", "%5bx%5d/%3a&+$"),
    ("=,;?", "%3d%2c%3b%3f", "=,;?"),
    ("<\">#%", "%3c%22%3e%23%25", "%3c%22%3e%23%25"),
    ("é", "%c3%a9", "%c3%a9"),
])
def test_sip_escaping(value: str, param: str, user: str) -> None:
    assert escape_param(value) == param
    assert escape_user(value) == user
    assert unescape(param) == value and unescape(user) == value


def test_query_escaping_escapes_what_sip_params_keep() -> None:
    assert escape_query("+49 30&x=1") == "%2B49%2030%26x%3D1"
