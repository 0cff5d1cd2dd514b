"""The four ways of asking the routing API. Each returns the controller's answer as a JSON
object (a route document or ``{"reply": {...}}``) or raises :class:`ControllerFailure`.

A failure's ``severity`` tells the circuit breaker what it proves:
``down`` (refused connection, no evapi client: open the circuit now), ``failure`` (timeout,
5xx: counts towards the threshold) or ``answered`` (the API is alive but answered something
unusable: not held against its health).

Answers are JSON read with bounds (:mod:`kamrouter.boundedjson`, through http_client and
evapi): one nested too deep or with too long an integer fails with kind ``refused``.
"""
from __future__ import annotations

from typing import Any, Literal, Protocol

import trio

from kamrouter.boundedjson import JsonLimitError
from kamrouter.modules.api.breaker import CircuitBreaker
from kamrouter.modules.evapi import ControllerGone, EvapiApi, NoController, encode_event
from kamrouter.modules.http_client import HttpClientApi, HttpError, JsonRpcError
from kamrouter.sip import SipParseError

Severity = Literal["down", "failure", "answered"]


class ControllerFailure(Exception):
    """No usable answer; ``kind`` is ``timeout``, ``unavailable``, ``error`` or ``refused``
    (an answer past the JSON limits)."""

    def __init__(self, kind: str, detail: str, severity: Severity) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.severity = severity


class CircuitOpen(Exception):
    """Not asked: the circuit breaker is open (the API failed lately)."""


class Controller(Protocol):
    #: What ``api.status`` shows as the target, e.g. the URL.
    target: str

    async def ask(self, msg: Any, event: dict[str, Any], timeout: float) -> dict[str, Any]:
        ...


async def ask_through(breaker: CircuitBreaker, controller: Controller, msg: Any,
                      event: dict[str, Any], timeout: float) -> dict[str, Any]:
    """``controller.ask`` behind ``breaker``: :class:`CircuitOpen` without asking while it is
    open; each outcome recorded as what it proves about the API's health."""
    if not breaker.allow():
        raise CircuitOpen(controller.target)
    try:
        answer = await controller.ask(msg, event, timeout)
    except ControllerFailure as exc:
        if exc.severity == "answered":
            breaker.success()
        else:
            breaker.failure(down=exc.severity == "down")
        raise
    except Exception:
        breaker.failure()
        raise
    breaker.success()
    return answer


def _object(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ControllerFailure("error", f"{what} is not a JSON object", "answered")
    return answer


def _http_failure(kind: str, detail: str) -> ControllerFailure:
    """An http_client error kind as what it proves about the API: no answer in time, no
    server at all (open the circuit), or a broken exchange."""
    if kind == "timeout":
        return ControllerFailure("timeout", detail, "failure")
    if kind == "connect":
        return ControllerFailure("unavailable", detail, "down")
    if kind == "refused":
        return ControllerFailure("refused", detail, "answered")
    return ControllerFailure("error", detail, "failure")


class HttpController:
    """POST the event as JSON; a 2xx answer's body is the decision."""

    def __init__(self, http: HttpClientApi, url: str) -> None:
        self.http = http
        self.target = url

    async def ask(self, msg: Any, event: dict[str, Any], timeout: float) -> dict[str, Any]:
        result = await self.http.query(self.target, "POST", event, timeout=timeout)
        if result.error is not None:
            raise _http_failure(result.error, result.detail)
        if not result.ok:
            raise ControllerFailure("error", f"HTTP {result.status}",
                                    "failure" if result.status >= 500 else "answered")
        try:
            return _object(result.json(), "the HTTP answer")
        except JsonLimitError as exc:
            raise ControllerFailure("refused", f"the HTTP answer: {exc}", "answered") from None
        except ValueError:
            raise ControllerFailure("error", "the HTTP answer is not JSON", "answered") from None


class JsonRpcController:
    """Call ``rpc_method`` with the event as named params; the result is the decision."""

    def __init__(self, http: HttpClientApi, url: str, method: str) -> None:
        self.http = http
        self.target = url
        self.method = method

    async def ask(self, msg: Any, event: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            result = await self.http.jsonrpc(self.target, self.method, event, timeout=timeout)
        except JsonRpcError as exc:
            raise ControllerFailure("error", f"JSON-RPC error {exc}", "answered") from None
        except HttpError as exc:
            raise _http_failure(exc.kind, exc.detail) from None
        return _object(result, "the JSON-RPC result")


class EvapiController:
    """Send the event to every evapi client; the first message carrying the same ``id``
    (or ``tindex``/``tlabel``) is the decision."""

    def __init__(self, evapi: EvapiApi) -> None:
        self.evapi = evapi
        self.target = "evapi"

    async def ask(self, msg: Any, event: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            return await self.evapi.request(event["id"], encode_event(event), timeout)
        except (NoController, ControllerGone) as exc:
            raise ControllerFailure("unavailable", str(exc), "down") from None
        except trio.TooSlowError as exc:
            raise ControllerFailure("timeout", str(exc), "failure") from None


class SipRedirectController:
    """Send the INVITE to a redirect server: its 3xx Contacts become serial routes by q.

    A 4xx/6xx answer is passed on to the caller as the reply; 2xx, 5xx and timeouts fail.
    """

    def __init__(self, router: Any, uri: str) -> None:
        self.router = router
        self.target = uri

    async def ask(self, msg: Any, event: dict[str, Any], timeout: float) -> dict[str, Any]:
        done = trio.Event()
        outcome: list[tuple[int, Any]] = []

        def on_reply(status: int, response: Any) -> None:
            outcome.append((status, response))
            done.set()

        self.router.send_request("INVITE", msg.ruri, from_uri=msg.from_uri, to_uri=msg.to_uri,
                                 dst_uri=self.target, timeout=timeout, on_reply=on_reply)
        with trio.move_on_after(timeout):
            await done.wait()
        if not outcome or outcome[0][0] == 408:
            raise ControllerFailure("timeout", f"no answer from {self.target}", "failure")
        status, response = outcome[0]
        if 300 <= status < 400 and response is not None:
            return redirect_document(response)
        if (400 <= status < 500 or status >= 600) and response is not None:
            return {"reply": {"code": status, "reason": response.reason}}
        if response is None:  # could not even be sent (477/478/503 made up locally)
            raise ControllerFailure("unavailable", f"{status} sending to {self.target}", "down")
        raise ControllerFailure("error", f"redirect server answered {status}",
                                "failure" if status >= 500 else "answered")


def redirect_document(response: Any) -> dict[str, Any]:
    """A serial route document from a 3xx's Contacts, highest q first (no q counts as 1)."""
    try:
        contacts = response.contacts
        if contacts == "*" or not contacts:
            raise ControllerFailure("error", f"{response.status} without Contacts", "answered")
        ordered = sorted(contacts, key=lambda contact: -(1.0 if contact.q is None else contact.q))
    except SipParseError as exc:
        raise ControllerFailure("error", f"bad Contact in {response.status}: {exc}",
                                "answered") from None
    return {"version": "1.0", "routing": "serial",
            "routes": [{"uri": str(contact.uri)} for contact in ordered]}
