"""http_client: asynchronous HTTP queries from routing scripts (Kamailio's http_client).

Script API (``from kamrouter.script import http_client as http``)::

    r = await http.query("http://127.0.0.1:8080/route?user=" + http.escape_query(msg.ruri_user),
                         timeout=2.0)
    if r.status == 200:
        targets = r.body.split("|")
    result = await http.jsonrpc("http://127.0.0.1:8081/", "lookup", {"user": msg.ruri_user})

While a query runs the transaction is parked (retransmissions absorbed, 100 Trying sent);
other calls keep flowing. One pool of keep-alive connections (:mod:`.pool`, HTTP/1.1,
TLS for https) serves the whole router.

``query`` never raises for network trouble: it returns ``status == 0`` and ``error`` in
``"timeout"``, ``"connect"`` (refused, unreachable) or ``"protocol"``; a URL that is not
http(s) raises ValueError. ``jsonrpc`` raises :class:`HttpError` (same kinds plus
``"status"``/``"invalid"``) or :class:`JsonRpcError`.

Stats ``httpclient:connections`` (requests made), ``connok`` (answered), ``connfail``
(no answer), ``timeouts``.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import trio

from kamrouter.config import Range, range_problems
from kamrouter.modules.base import Module, RouterServices
from kamrouter.modules.http_client.escape import escape_param, escape_query, escape_user, unescape
from kamrouter.modules.http_client.pool import ConnectFailed, ConnectionPool, ExchangeFailed

__all__ = ["HttpClientApi", "HttpClientConfig", "HttpClientModule", "HttpError", "HttpResult",
           "JsonRpcError", "escape_param", "escape_query", "escape_user", "unescape"]


@dataclass
class HttpClientConfig:
    #: Default bound of a whole request, seconds (Kamailio connection_timeout is 4 s).
    timeout: float = 4.0
    max_connections: int = 100
    #: Idle connections kept open for reuse, and for how long (seconds). Fewer than
    #: max_connections means closing and reopening connections at every burst.
    max_keepalive: int = 100
    keepalive_expiry: float = 30.0
    user_agent: str = "kamrouter"
    verify_tls: bool = True

    def validate(self) -> list[str]:
        return range_problems(self, {
            "timeout": Range(0.01, 300, "s"), "max_connections": Range(1, 10000),
            "max_keepalive": Range(0, 10000), "keepalive_expiry": Range(0.1, 3600, "s")})


@dataclass(frozen=True, slots=True)
class HttpResult:
    """An HTTP answer (``status`` >= 100), or ``status == 0`` with ``error`` set."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)   # names lower case
    body: str = ""
    error: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def first_line(self) -> str:
        """The body's first line (what Kamailio's http_client_query stores by default)."""
        return self.body.split("\n", 1)[0].rstrip("\r")

    def json(self) -> Any:
        return json.loads(self.body)


class HttpError(Exception):
    """No usable HTTP answer; ``kind`` is timeout, connect, protocol, status or invalid."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class JsonRpcError(Exception):
    """The server answered a JSON-RPC call with an error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.data = data


class HttpClientApi:
    escape_param = staticmethod(escape_param)
    escape_user = staticmethod(escape_user)
    escape_query = staticmethod(escape_query)
    unescape = staticmethod(unescape)

    def __init__(self, pool: ConnectionPool, config: HttpClientConfig,
                 router: RouterServices) -> None:
        self._pool = pool
        self._default_timeout = config.timeout
        self._user_agent = ("User-Agent", config.user_agent)
        self._ids = itertools.count(1)
        self._connections = router.stats.counter("httpclient", "connections")
        self._ok = router.stats.counter("httpclient", "connok")
        self._fail = router.stats.counter("httpclient", "connfail")
        self._timeouts = router.stats.counter("httpclient", "timeouts")

    async def query(self, url: str, method: str = "GET",
                    body: str | bytes | dict[str, Any] | list[Any] | None = None,
                    headers: dict[str, str] | None = None, timeout: float | None = None
                    ) -> HttpResult:
        """Send one request; a dict/list body goes as JSON. See :class:`HttpResult`."""
        limit = self._default_timeout if timeout is None else timeout
        request_headers = list((headers or {}).items())
        given = {name.lower() for name, _ in request_headers}
        if "user-agent" not in given:
            request_headers.append(self._user_agent)
        if isinstance(body, (dict, list)):
            content = json.dumps(body, separators=(",", ":")).encode()
            if "content-type" not in given:
                request_headers.append(("Content-Type", "application/json"))
        else:
            content = body.encode() if isinstance(body, str) else body or b""
        self._connections.value += 1
        error, detail = "timeout", f"no answer within {limit:g} s"
        with trio.move_on_after(limit):
            try:
                response = await self._pool.request(method, url, request_headers, content)
            except ConnectFailed as exc:
                error, detail = "connect", str(exc)
            except ExchangeFailed as exc:
                error, detail = "protocol", str(exc)
            else:
                self._ok.value += 1
                return HttpResult(response.status, dict(response.headers),
                                  response.body.decode("utf-8", "replace"))
        if error == "timeout":
            self._timeouts.value += 1
        self._fail.value += 1
        return HttpResult(0, error=error, detail=detail)

    async def jsonrpc(self, url: str, method: str, params: list[Any] | dict[str, Any] | None = None,
                      *, timeout: float | None = None) -> Any:
        """Call a JSON-RPC 2.0 method over HTTP POST and return its ``result``."""
        call: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": next(self._ids)}
        if params is not None:
            call["params"] = params
        result = await self.query(url, "POST", call, timeout=timeout)
        if result.error is not None:
            raise HttpError(result.error, result.detail)
        try:
            answer = result.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            error = answer["error"]
            raise JsonRpcError(error.get("code", 0), str(error.get("message", "")),
                               error.get("data"))
        if not result.ok:
            raise HttpError("status", f"HTTP {result.status}")
        if not isinstance(answer, dict) or "result" not in answer:
            raise HttpError("invalid", f"not a JSON-RPC response: {result.body[:80]!r}")
        return answer["result"]


class HttpClientModule(Module):
    name = "http_client"
    Config = HttpClientConfig

    def __init__(self, router: RouterServices, config: HttpClientConfig) -> None:
        super().__init__(router, config)
        self.pool = ConnectionPool(max_connections=config.max_connections,
                                   max_keepalive=config.max_keepalive,
                                   keepalive_expiry=config.keepalive_expiry,
                                   verify_tls=config.verify_tls, clock=router.clock)
        self._api = HttpClientApi(self.pool, config, router)

    def api(self) -> HttpClientApi:
        return self._api

    async def stop(self) -> None:
        self.pool.close()
