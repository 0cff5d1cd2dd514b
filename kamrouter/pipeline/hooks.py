"""Running the routing script's hooks: plain and ``async`` ones, a call's requests in arrival
order, requests parked while an ``async`` hook awaits (sans-IO: tasks are started through the
``spawn`` callable it is given, time is tm's scheduler).

A plain ``request_route`` runs at once, in the receive loop. It may return an awaitable (by
calling an ``async def`` sub-route): only then is the request parked (its transaction absorbs
retransmissions and is bounded by ``fr_timer``) and the awaitable finished in a task. An
``async def`` request_route runs in a task for every request. Either way a call's requests
are routed one after the other: while one of them is in a task, the next ones queue behind it.
Reply and branch routes are plain (they cannot await); failure routes may be either.
"""
from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from kamrouter.guard import HOOK_ERRORS
from kamrouter.script.loader import Script
from kamrouter.script.message import ScriptMessage
from kamrouter.script.watch import HookTimer
from kamrouter.sip import SipParseError
from kamrouter.stats import Counter
from kamrouter.tm import Transaction

log = logging.getLogger("kamrouter.proxy")

Spawn = Callable[..., None]


class RouteActions(Protocol):
    """What the hook runner asks of the proxy around a hook."""

    def at_capacity(self, msg: ScriptMessage) -> bool: ...

    def transaction_for(self, msg: ScriptMessage) -> Transaction: ...

    def send_reply(self, msg: ScriptMessage, status: int, reason: str | None = None) -> bool: ...


class HookRunner:
    """Runs the current script's hooks for one router process."""

    def __init__(self, script: Callable[[], Script], spawn: Spawn, actions: RouteActions,
                 parked_timeout: float, timer: HookTimer, script_errors: Counter,
                 err_requests: Counter) -> None:
        self._script = script
        #: Times every synchronous hook call (a slow one is logged and counted).
        self.timer = timer
        self._spawn = spawn
        self._actions = actions
        self._parked_timeout = parked_timeout
        self.script_errors = script_errors
        self.err_requests = err_requests
        #: Calls with a request being routed in a task, and their requests waiting behind it.
        self._async_calls: dict[str, deque[tuple[ScriptMessage, Awaitable[Any] | None]]] = {}

    # -- request_route ----------------------------------------------------------------------
    def request_route(self, msg: ScriptMessage) -> None:
        """Route a new request through the script's request_route (see the module doc)."""
        script = self._script()
        if script.request_route_is_async or msg.call_id in self._async_calls:
            self._park(msg, None)
            return
        try:
            pending = self.timer.call(script.request_route, msg)
        except HOOK_ERRORS as exc:  # operator code
            self._route_failed(msg, exc)
            return
        if pending is not None and inspect.isawaitable(pending):
            self._park(msg, pending)
        elif msg.txn is not None:
            # Routed: the transaction keeps the request for local replies and failure
            # routes, which rarely read it again: as its bytes until they do.
            msg.txn.routed()

    def _park(self, msg: ScriptMessage, pending: Awaitable[Any] | None) -> None:
        """Park the request (its transaction absorbs retransmissions meanwhile) and route it
        in its call's task: run request_route, or finish ``pending``, what request_route
        already returned."""
        if self._actions.at_capacity(msg):
            if isinstance(pending, Coroutine):
                pending.close()
            return
        if msg.method != "ACK":
            self._actions.transaction_for(msg).arm_timeout(self._parked_timeout)
        waiting = self._async_calls.get(msg.call_id)
        if waiting is not None:
            waiting.append((msg, pending))  # keep a call's requests in arrival order
        else:
            self._async_calls[msg.call_id] = deque()
            self._spawn(self._run_call, msg, pending)

    async def _run_call(self, msg: ScriptMessage, pending: Awaitable[Any] | None) -> None:
        """Route one call's requests one after the other, each to its end."""
        call_id = msg.call_id
        waiting = self._async_calls[call_id]
        try:
            while True:
                await self._run_parked(msg, pending)
                if not waiting:
                    return
                msg, pending = waiting.popleft()
        finally:
            del self._async_calls[call_id]

    async def _run_parked(self, msg: ScriptMessage, pending: Awaitable[Any] | None) -> None:
        try:
            result = self._script().request_route(msg) if pending is None else pending
            if inspect.isawaitable(result):  # a SIGHUP may have swapped in a plain hook
                await result
        except HOOK_ERRORS as exc:  # operator code
            self._route_failed(msg, exc)
            return
        txn = msg.txn
        if txn is not None and not txn.branches and not txn.final_status:
            txn.terminate()  # the script dropped the request
        elif txn is not None:
            txn.routed()  # as after a plain request_route

    def _route_failed(self, msg: ScriptMessage, exc: BaseException) -> None:
        """request_route raised: a header it read turned out malformed (answer what is
        wrong), or operator code failed (log it, answer 500). The router goes on."""
        if isinstance(exc, SipParseError):
            self.err_requests.value += 1
            log.info("bad request from %s: %s", msg.source, exc)
            if msg.method != "ACK" and not msg.replied:
                self._actions.send_reply(msg, exc.status, exc.reason)
            return
        self.script_errors.value += 1
        log.error("routing script raised in request_route for %r", msg, exc_info=exc)
        if msg.method != "ACK" and not msg.replied:
            txn = msg.txn
            if txn is None or not txn.final_status:
                self._actions.send_reply(msg, 500, "Server Internal Error (routing script failed)")

    @property
    def script(self) -> Script:
        """The routing script in use (a reload swaps it)."""
        return self._script()

    # -- the other routes -------------------------------------------------------------------
    def call(self, hook: Callable[..., Any], msg: ScriptMessage) -> Any:
        """Run a plain hook (reply and branch routes cannot await); None when it raised."""
        try:
            return self.timer.call(hook, msg)
        except HOOK_ERRORS:  # operator code
            self.script_errors.value += 1
            log.exception("routing script raised in %s for %r", msg.route, msg)
            return None

    def resolve(self, handler: Any) -> Callable[..., Any]:
        """A route armed by name or as a function, in the current script."""
        return self._script().resolve(handler)

    def failure_route(self, txn: Transaction, handler: Any, msg: ScriptMessage) -> None:
        """Run a failure route, plain or ``async``, and end the failure handling after it."""
        func = self.resolve(handler)
        if inspect.iscoroutinefunction(func):
            self._spawn(self._run_async_failure, txn, func, msg)
            return
        self.call(func, msg)
        txn.end_failure()

    async def _run_async_failure(self, txn: Transaction, func: Callable[..., Any],
                                 msg: ScriptMessage) -> None:
        try:
            await func(msg)
        except HOOK_ERRORS:  # operator code
            self.script_errors.value += 1
            log.exception("routing script raised in failure route for %r", msg)
        txn.end_failure()
