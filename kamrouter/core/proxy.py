"""The proxy pipeline (RFC 3261 §16): receive → parse → tm → script → relay → send.

Everything here runs synchronously in the transport's receive loop; only script hooks that are
``async def`` (or next hops that need DNS) continue in a task of their own, while their
transaction absorbs retransmissions.
"""
from __future__ import annotations

import hashlib
import re
from collections import deque
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from kamrouter.core.addressing import (Identity, NextHop, format_hostport, next_hop,
                                       record_route_value)
from kamrouter.guard import HOOK_ERRORS, InputGuard
from kamrouter.net import Endpoint
from kamrouter.script.message import RouteState, ScriptMessage, Target, route_state
from kamrouter.script.watch import HookTimer
from kamrouter.sip import (Request, Response, SipLimitError, SipParseError, SipUri, make_request,
                           make_response, parse, wire_bytes)
from kamrouter.tm import MAGIC_COOKIE, Branch, Transaction, TransactionLayer, TxnState

if TYPE_CHECKING:
    from kamrouter.core.router import Router

log = logging.getLogger("kamrouter.proxy")

#: A bare ``;rport`` Via parameter (the sender asks for its source port, RFC 3581).
_EMPTY_RPORT = re.compile(r";\s*rport(?=\s*(?:;|$))", re.IGNORECASE)

#: Server INVITE states an ACK of ours belongs to (it ACKs our final >= 300).
_ACKABLE = (TxnState.COMPLETED, TxnState.CONFIRMED)

COUNTED_METHODS = ("invite", "cancel", "ack", "bye", "info", "register", "subscribe", "notify",
                   "message", "options", "prack", "update", "refer", "publish")


class Proxy:
    """Request and reply processing of one router process; the tm layer's hooks."""

    def __init__(self, router: Router, tm_factory: Callable[[Proxy], TransactionLayer]) -> None:
        self.router = router
        self.transports = router.transports
        self.identity = Identity(router.sockets, router.settings.core.alias)
        self.max_size = router.settings.core.max_message_size
        self.limits = router.settings.core.header_limits()
        self.default_max_forwards = router.settings.core.max_forwards
        self.tm = tm_factory(self)
        counter = router.stats.counter
        self.rcv_requests = counter("core", "rcv_requests")
        self.rcv_by_method = {m.upper(): counter("core", f"rcv_requests_{m}")
                              for m in COUNTED_METHODS}
        self.rcv_replies = counter("core", "rcv_replies")
        self.rcv_by_class = {c: counter("core", f"rcv_replies_{c}xx") for c in range(1, 7)}
        self.fwd_requests = counter("core", "fwd_requests")
        self.fwd_replies = counter("core", "fwd_replies")
        self.drop_requests = counter("core", "drop_requests")
        self.drop_replies = counter("core", "drop_replies")
        self.err_requests = counter("core", "err_requests")
        self.err_replies = counter("core", "err_replies")
        self.bad_msg_hdr = counter("core", "bad_msg_hdr")
        self.limit_exceeded = counter("core", "msg_limit_exceeded")
        self.sl_sent = counter("sl", "sent_replies")
        self.sl_sent_err = counter("sl", "sent_err_replies")
        self.sl_by_class = {c: counter("sl", f"{c}xx_replies") for c in range(1, 7)}
        self.sl_acks = counter("sl", "received_ACKs")
        self.script_errors = counter("core", "script_errors")
        self.guard = InputGuard(router.stats)
        self.hooks = HookTimer(router.settings.routing.slow_hook_ms,
                               counter("core", "script_slow_hooks"))
        self._loop_marker = self.tm.branch_prefix.encode()
        #: Calls with a request being routed in a task, and their requests waiting behind it.
        self._async_calls: dict[str, deque[tuple[ScriptMessage, Awaitable[Any] | None]]] = {}

    # == receiving ==========================================================================
    def on_message(self, data: bytes, source: Endpoint, local: Endpoint) -> None:
        """Entry point of the transports: one datagram or one framed stream message.

        The last-resort guard of both SIP input paths: whatever a bug raises while the
        message is handled is counted and logged (:class:`~kamrouter.guard.InputGuard`) and
        answered with 500 when the message is a request that can be answered."""
        try:
            self._receive(data, source, local)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the receive loop
            self._internal_error(exc, data, source, local)

    def _receive(self, data: bytes, source: Endpoint, local: Endpoint) -> None:
        try:
            msg = parse(data, max_size=self.max_size, limits=self.limits)
        except SipParseError as exc:
            self._malformed(exc, source, local)
            return
        try:
            if msg.is_request:
                if self._loop_marker in data and self._looped(msg):  # type: ignore[arg-type]
                    self._stateless_reply(msg, source, local, 482, "Loop Detected")  # type: ignore[arg-type]
                    return
                self.on_request(msg, source, local)  # type: ignore[arg-type]
            else:
                self.on_reply(msg, source, local)  # type: ignore[arg-type]
        except SipParseError as exc:
            # A header the route read lazily turned out to be malformed.
            self._malformed(exc, source, local, msg)

    def _internal_error(self, exc: Exception, data: bytes, source: Endpoint,
                        local: Endpoint) -> None:
        """Count and log a bug hit by this message; answer 500 if it is a request (parsed
        again: this is the rare path, the hot one keeps no state for it)."""
        self.guard.caught(source.proto, source, exc)
        try:
            msg = parse(data, max_size=self.max_size, limits=self.limits)
            if msg.is_request and msg.method != "ACK":  # type: ignore[union-attr]
                self._stateless_reply(msg, source, local, 500,  # type: ignore[arg-type]
                                      "Server Internal Error")
        except Exception:  # noqa: BLE001 - too broken even to answer: counted above
            pass

    def _malformed(self, exc: SipParseError, source: Endpoint, local: Endpoint,
                   msg: Request | Response | None = None) -> None:
        msg = msg if msg is not None else exc.message
        if isinstance(exc, SipLimitError):
            self.limit_exceeded.value += 1
        if msg is None or not msg.is_request:
            if msg is not None:
                self.err_replies.value += 1
            self.bad_msg_hdr.value += 1
            log.debug("dropping malformed message from %s: %s", source, exc)
            return
        self.err_requests.value += 1
        log.info("bad request from %s: %s", source, exc)
        if msg.method != "ACK":  # type: ignore[union-attr]
            try:
                self._stateless_reply(msg, source, local, exc.status, exc.reason)
            except SipParseError:
                self.drop_requests.value += 1  # too broken even to answer (no Via)

    def on_request(self, req: Request, source: Endpoint, local: Endpoint) -> None:
        self.rcv_requests.value += 1
        method = req.method
        counter = self.rcv_by_method.get(method)
        if counter is not None:
            counter.value += 1
        tm = self.tm
        if method == "ACK":
            txn = tm.find(req)
            if txn is not None and txn.state in _ACKABLE:
                txn.ack()  # hop-by-hop ACK of our non-2xx final
                self.sl_acks.value += 1
                return
        elif method == "CANCEL":
            invite = tm.find_invite(req)
            if invite is not None:
                self._cancel(req, invite, source, local)
                return
        else:
            txn = tm.find(req)
            if txn is not None:
                txn.retransmission()
                return
        self._stamp_via(req, source)
        msg = ScriptMessage(req, source, local)
        self.run_request_route(msg)

    @staticmethod
    def _stamp_via(req: Request, source: Endpoint) -> None:
        """RFC 3261 §18.2.1 / RFC 3581: record where the request really came from in its
        top Via (``received`` when sent-by is not the source address, ``rport=<port>`` when
        the sender asked), so replies find their way back through NATs."""
        via = req.via
        needs_received = via.host.strip("[]") != source.host
        if not needs_received and not via.has_rport:
            return
        value = req.pop_via()
        if via.has_rport:
            value = _EMPTY_RPORT.sub(f";rport={source.port}", value, count=1)
        if needs_received and via.received is None:
            value += f";received={source.host}"
        req.prepend_via(value)

    def _cancel(self, cancel: Request, invite: Transaction, source: Endpoint,
                local: Endpoint) -> None:
        existing = self.tm.find(cancel)
        if existing is not None:
            existing.retransmission()
            return
        txn = self.tm.create(cancel, source, local)
        txn.reply_local(200, "canceling")
        reason = cancel.get("Reason")
        if reason:
            for branch in invite.branches:
                if branch.cancel_reason is None:
                    branch.cancel_reason = reason
        invite.cancel()

    def on_reply(self, reply: Response, source: Endpoint, local: Endpoint) -> None:
        self.rcv_replies.value += 1
        counter = self.rcv_by_class.get(reply.status // 100)
        if counter is not None:
            counter.value += 1
        script = self.router.script
        if script.reply_route is not None:
            msg = ScriptMessage(reply, source, local, route="reply")
            msg.status, msg.reason = reply.status, reply.reason
            if self._call_hook(script.reply_route, msg) is False:
                self.drop_replies.value += 1
                return
        if not self.tm.receive_reply(reply):
            self.forward_reply_stateless(reply, source)

    # == loop detection (RFC 3261 §16.3 step 4) ================================================
    @staticmethod
    def loop_tag(req: Request, received_ruri: str) -> str:
        """Hash of what stays the same when a request comes back to us unchanged; a spiral
        (the request returns with another Request-URI) hashes differently."""
        seed = "|".join((received_ruri, req.from_tag or "", req.to_tag or "", req.call_id,
                         str(req.cseq.number), req.get("Proxy-Require") or "",
                         req.get("Proxy-Authorization") or ""))
        return hashlib.blake2s(wire_bytes(seed), digest_size=6).hexdigest()

    def _looped(self, req: Request) -> bool:
        """One of our Vias carries this very request's loop tag: it went round in a circle."""
        ours = self.tm.branch_prefix + self.loop_tag(req, req.ruri)
        return any((via.branch or "").startswith(ours) for via in req.vias)

    # == running script hooks ==================================================================
    def run_request_route(self, msg: ScriptMessage) -> None:
        """Route a new request through the script's request_route.

        An ``async def`` request_route runs in a task for every request. A plain one runs
        at once and may return an awaitable (by calling an ``async def`` sub-route): only
        then is the request parked and the awaitable finished in a task. So a script can
        route in-dialog requests without the cost of a task and ask an API only for new
        calls. Either way, a call's requests are routed in arrival order.
        """
        script = self.router.script
        if script.request_route_is_async or msg.call_id in self._async_calls:
            self._route_in_task(msg, None)
            return
        try:
            pending = self.hooks.call(script.request_route, msg)
        except HOOK_ERRORS as exc:  # operator code
            self._route_failed(msg, exc)
            return
        if pending is not None and inspect.isawaitable(pending):
            self._route_in_task(msg, pending)

    def _route_in_task(self, msg: ScriptMessage, pending: Awaitable[Any] | None) -> None:
        """Park the request (its transaction absorbs retransmissions meanwhile) and route
        it in its call's task: run request_route, or finish ``pending``, what request_route
        already returned."""
        if self.at_capacity(msg):
            if isinstance(pending, Coroutine):
                pending.close()
            return
        if msg.method != "ACK":
            txn = self.transaction_for(msg)
            txn.arm_timeout(self.tm.params.fr_timer)
        waiting = self._async_calls.get(msg.call_id)
        if waiting is not None:
            waiting.append((msg, pending))  # keep a call's requests in arrival order
        else:
            self._async_calls[msg.call_id] = deque()
            self.router.spawn(self._run_async_call, msg, pending)

    async def _run_async_call(self, msg: ScriptMessage, pending: Awaitable[Any] | None) -> None:
        """Route one call's requests one after the other, each to its end."""
        call_id = msg.call_id
        waiting = self._async_calls[call_id]
        try:
            while True:
                await self._run_async_request(msg, pending)
                if not waiting:
                    return
                msg, pending = waiting.popleft()
        finally:
            del self._async_calls[call_id]

    async def _run_async_request(self, msg: ScriptMessage,
                                 pending: Awaitable[Any] | None) -> None:
        try:
            result = self.router.script.request_route(msg) if pending is None else pending
            if inspect.isawaitable(result):  # a SIGHUP may have swapped in a plain hook
                await result
        except HOOK_ERRORS as exc:  # operator code
            self._route_failed(msg, exc)
            return
        txn = msg.txn
        if txn is not None and not txn.branches and not txn.final_status:
            txn.terminate()  # the script dropped the request

    def _route_failed(self, msg: ScriptMessage, exc: BaseException) -> None:
        """request_route raised: a header it read turned out malformed (answer what is
        wrong), or operator code failed (log it, answer 500). The router goes on."""
        if isinstance(exc, SipParseError):
            self.err_requests.value += 1
            log.info("bad request from %s: %s", msg.source, exc)
            if msg.method != "ACK" and not msg.replied:
                self.send_reply(msg, exc.status, exc.reason)
            return
        self.script_errors.value += 1
        log.error("routing script raised in request_route for %r", msg, exc_info=exc)
        if msg.method != "ACK" and not msg.replied:
            txn = msg.txn
            if txn is None or not txn.final_status:
                self.send_reply(msg, 500, "Server Internal Error (routing script failed)")

    def _call_hook(self, hook: Callable[..., Any], msg: ScriptMessage) -> Any:
        """Run a synchronous hook (reply/branch routes must not await)."""
        try:
            return self.hooks.call(hook, msg)
        except HOOK_ERRORS:  # operator code
            self.script_errors.value += 1
            log.exception("routing script raised in %s for %r", msg.route, msg)
            return None

    # == transactions ======================================================================
    def at_capacity(self, msg: ScriptMessage) -> bool:
        """``tm.max_transactions`` reached: answer 503 (so the peer retries elsewhere)."""
        if msg.txn is not None or len(self.tm) < self.tm.params.max_transactions:
            return False
        self.drop_requests.value += 1
        if msg.method != "ACK":
            self._stateless_reply(msg.sip, msg.source, msg.local, 503,  # type: ignore[arg-type]
                                  "Service Unavailable (transaction limit)",
                                  (("Retry-After", "5"),))
            msg.replied = True
        return True

    def transaction_for(self, msg: ScriptMessage) -> Transaction:
        """The message's transaction, created on first need (Kamailio's t_newtran)."""
        txn = msg.txn
        if txn is None:
            txn = self.tm.create(msg.sip, msg.source, msg.local)  # type: ignore[arg-type]
            txn.context = RouteState(msg.vars, msg.flags)
            msg.txn = txn
        return txn

    # TmHooks --------------------------------------------------------------------------
    def on_branch_reply(self, txn: Transaction, branch: Branch, reply: Response) -> bool:
        handler = txn.reply_handler
        if handler is None:
            return True
        msg = self._context(txn, "reply", reply, sip=reply)
        msg.branch = branch
        msg.branch_index = branch.index
        msg.status, msg.reason = reply.status, reply.reason
        return self._call_hook(self.router.script.resolve(handler), msg) is not False

    def on_failure(self, txn: Transaction, handler: Any) -> None:
        best = txn.best_branch()
        msg = self._context(txn, "failure", best.reply if best else None)
        if best is not None:
            msg.branch = best
            msg.branch_index = best.index
            msg.status = best.status
            msg.reason = best.reply.reason if best.reply is not None else ""
        func = self.router.script.resolve(handler)
        if inspect.iscoroutinefunction(func):
            self.router.spawn(self._run_async_failure, txn, func, msg)
            return
        self._call_hook(func, msg)
        txn.end_failure()

    async def _run_async_failure(self, txn: Transaction, func: Callable[..., Any],
                                 msg: ScriptMessage) -> None:
        try:
            await func(msg)
        except HOOK_ERRORS:  # operator code
            self.script_errors.value += 1
            log.exception("routing script raised in failure route for %r", msg)
        txn.end_failure()

    def on_terminated(self, txn: Transaction) -> None:
        self.router.transaction_terminated(txn)

    def _context(self, txn: Transaction, route: str, reply: Response | None,
                 sip: Request | Response | None = None) -> ScriptMessage:
        """A script message for a route that runs after request_route: a failure route
        edits a copy of the relayed request, a reply route reads ``sip``, the reply."""
        state = route_state(txn)
        if sip is None:
            sip = (state.relay_request or txn.request).copy()
        msg = ScriptMessage(sip, txn.source, txn.local, route=route)
        msg.txn = txn
        msg.vars = state.vars
        msg.flags = state.flags
        msg.record_route = state.record_route
        msg.mf_done = True
        msg.reply = reply
        return msg

    # == replying ==========================================================================
    def send_reply(self, msg: ScriptMessage, status: int, reason: str | None = None,
                   headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> bool:
        """sl_send_reply: statefully when the message has a transaction, else statelessly."""
        if not msg.sip.is_request or msg.method == "ACK":
            return False
        msg.replied = True
        txn = msg.txn
        if txn is not None:
            if txn.final_status:
                return False
            txn.reply_local(status, reason, headers, body)
            return True
        self._stateless_reply(msg.sip, msg.source, msg.local, status, reason,  # type: ignore[arg-type]
                              headers, body)
        return True

    def _stateless_reply(self, req: Request, source: Endpoint, local: Endpoint | None,
                         status: int, reason: str | None,
                         headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> None:
        # Stateless: the To tag (added only when To has none) must be the same for
        # retransmissions. Raw values: this also answers requests that failed to parse.
        seed = "|".join(req.get(name) or "" for name in ("Call-ID", "From", "CSeq"))
        tag = hashlib.blake2s(wire_bytes(seed), digest_size=8).hexdigest()
        reply = make_response(req, status, reason, to_tag=tag, headers=headers, body=body)
        try:
            dest = self.tm.reply_destination(req, source)
        except SipParseError:  # a top Via that does not parse cannot be trusted either
            dest = source
        self.transports.send(reply.to_bytes(), dest, local, None)
        self.sl_sent.value += 1
        if status >= 300:
            self.sl_sent_err.value += 1
        counter = self.sl_by_class.get(status // 100)
        if counter is not None:
            counter.value += 1

    def forward_reply_stateless(self, reply: Response, source: Endpoint) -> None:
        """A reply with no transaction: pop our Via and send it to the next one (§16.11),
        if the router's stray-reply checks (the relay policy) let it go there."""
        vias = reply.vias
        top = vias[0]
        if (len(vias) < 2 or not self.identity.is_me(top.host, top.port)
                or not all(check(reply, source) for check in self.router.stray_reply_checks)):
            self.drop_replies.value += 1
            return
        nxt = vias[1]
        host = (nxt.received or nxt.host).strip("[]")
        # The next Via may name a host: resolved like a next hop (never by a blocking
        # sendto), and the address checked against our own sockets by the send.
        known, address = self.router.resolver.cached(host)
        if not known:
            self.router.spawn(self._resolve_and_forward_reply, reply, host)
            return
        self._forward_reply_to(reply, address)

    async def _resolve_and_forward_reply(self, reply: Response, host: str) -> None:
        self._forward_reply_to(reply, await self.router.resolver.resolve(host))

    def _forward_reply_to(self, reply: Response, address: str | None) -> None:
        if address is None:
            self.drop_replies.value += 1
            return
        nxt = reply.vias[1]
        dest = Endpoint(nxt.transport.lower(), address, nxt.rport or nxt.port or 5060)
        self.transports.send(reply.bytes_without_top_via(), dest, None, None)
        self.fwd_replies.value += 1

    # == relaying ============================================================================
    @staticmethod
    def decrement_max_forwards(msg: ScriptMessage, limit: int) -> bool:
        """Max-Forwards − 1, once per message (``limit`` when missing, capped at it); False
        when it is exhausted. Kamailio's ``maxfwd_process``."""
        if msg.mf_done:
            return True
        req: Request = msg.sip  # type: ignore[assignment]
        value = req.max_forwards
        if value is None:
            req.set_max_forwards(limit)
        elif value <= 0:
            return False
        else:
            req.set_max_forwards(min(value, limit) - 1)
        msg.mf_done = True
        return True

    def prepare_request(self, msg: ScriptMessage) -> bool:
        """RFC 3261 §16.6 step 3 even when the script skipped maxfwd: 483 when exhausted."""
        if self.decrement_max_forwards(msg, self.default_max_forwards):
            return True
        self.send_reply(msg, 483, "Too Many Hops")
        return False

    def relay(self, msg: ScriptMessage) -> bool:
        """tm.relay: statefully to the destination set (R-URI/$du plus appended branches)."""
        if msg.method == "ACK":
            return self.forward_stateless(msg)
        if self.at_capacity(msg):
            return False
        txn = self.transaction_for(msg)
        if txn.final_status or (txn.canceled and msg.route == "failure"):
            return False
        if not self.prepare_request(msg):
            return False
        state = route_state(txn)
        state.relay_request = msg.sip  # type: ignore[assignment]
        state.record_route = msg.record_route
        if state.loop_tag is None:
            state.loop_tag = self.loop_tag(msg.sip, msg.received_ruri)  # type: ignore[arg-type]
        targets = [Target(msg.ruri, msg.dst_uri, msg.socket, msg.path)] + msg.branches
        msg.branches = []
        started = 0
        txn.building = True  # no verdict until every branch of this round exists
        try:
            for target in targets:
                started += self._start_branch(msg, txn, target)
        finally:
            txn.building = False
        self.fwd_requests.value += started
        if not txn.final_status and not any(b.pending for b in txn.branches):
            if msg.route != "failure":  # in a failure route, end_failure() decides
                txn.all_branches_done()
            msg.replied = True
        return started > 0

    def _start_branch(self, msg: ScriptMessage, txn: Transaction, target: Target) -> bool:
        """Build and send (or schedule, pending DNS) one branch; False if it failed at once."""
        req: Request = msg.sip.copy()  # type: ignore[assignment]
        index = len(txn.branches)
        if txn.branch_handler is not None and not self._branch_route(msg, txn, target, req,
                                                                     index):
            return False  # the branch route dropped this branch
        if target.uri != req.ruri:
            req.set_ruri(target.uri)
        for name, value in target.headers:
            req.append_header(name, value)
        if target.path:
            req.prepend_header("Route", target.path)
        state = route_state(txn)
        branch = txn.add_branch(req, None, None,
                                self.tm.branch_id(txn, index, state.loop_tag or ""))
        self._configure_branch(branch, target)
        try:
            hop = self._next_hop(req, target)
        except SipParseError as exc:
            branch.fail(exc.status, exc.reason)
            return False
        self._dispatch_branch(msg.local, branch, hop, target.socket, state.record_route)
        return True

    def _dispatch_branch(self, inbound: Endpoint | None, branch: Branch, hop: NextHop,
                         socket: str | None, record_route: bool | str) -> None:
        """Send now when the next hop's address is known, else after a DNS lookup."""
        known, address = self.router.resolver.cached(hop.host)
        if known:
            self._send_branch(inbound, branch, hop, address, socket, record_route)
        else:
            self.router.spawn(self._resolve_and_send, inbound, branch, hop, socket,
                              record_route)

    def originate(self, method: str, ruri: str, *, from_uri: str, to_uri: str | None,
                  dst_uri: str | None, socket: str | None, headers: tuple[tuple[str, str], ...],
                  timeout: float | None, on_reply: Callable[[int, Response | None], None]
                  ) -> None:
        """A request of the router's own (e.g. an OPTIONS probe) through a tm branch."""
        hop = next_hop(dst_uri or ruri)
        request = make_request(method, ruri, from_uri=from_uri, to_uri=to_uri or ruri,
                               via="SIP/2.0/UDP 0.0.0.0", headers=headers)
        request.pop_via()  # the real Via names the socket chosen when it is sent
        txn = self.tm.create_uac(request, on_reply)
        if timeout is not None:
            txn.fr_timer = timeout
        branch = txn.add_branch(request, None, None, self.tm.branch_id(txn, 0))
        self._dispatch_branch(None, branch, hop, socket, record_route=False)

    def _branch_route(self, msg: ScriptMessage, txn: Transaction, target: Target,
                      req: Request, index: int) -> bool:
        """Run the armed branch route on this branch's own copy; False drops the branch."""
        branch_msg = ScriptMessage(req, msg.source, msg.local, route="branch")
        branch_msg.txn, branch_msg.vars, branch_msg.flags = txn, msg.vars, msg.flags
        branch_msg.target = target
        branch_msg.dst_uri = target.dst_uri
        branch_msg.branch_index = index
        if self._call_hook(self.router.script.resolve(txn.branch_handler), branch_msg) is False:
            return False
        target.dst_uri = branch_msg.dst_uri
        return True

    @staticmethod
    def _configure_branch(branch: Branch, target: Target) -> None:
        if target.fr_timer is not None:
            branch.fr_timer = target.fr_timer
        if target.fr_inv_timer is not None:
            branch.fr_inv_timer = target.fr_inv_timer
        branch.flags = target.branch_flags
        branch.dst_uri = target.dst_uri or target.uri

    async def _resolve_and_send(self, inbound: Endpoint | None, branch: Branch, hop: NextHop,
                                socket: str | None, record_route: bool | str) -> None:
        address = await self.router.resolver.resolve(hop.host)
        if branch.pending:
            self._send_branch(inbound, branch, hop, address, socket, record_route)

    def _send_branch(self, inbound: Endpoint | None, branch: Branch, hop: NextHop,
                     address: str | None, socket: str | None, record_route: bool | str
                     ) -> None:
        try:
            branch.dest, branch.local = self._stamp_outgoing(
                branch.request, hop, address, socket, inbound if record_route else None,
                branch.branch_id, record_route if isinstance(record_route, str) else "")
        except SipParseError as exc:
            branch.fail(exc.status, exc.reason)
            return
        branch.start(branch.request.to_bytes())

    def _stamp_outgoing(self, req: Request, hop: NextHop, address: str | None,
                        socket: str | None, record_route_from: Endpoint | None,
                        branch_id: str, rr_params: str = "") -> tuple[Endpoint, Endpoint]:
        """Pick the local socket for the resolved next hop, add Record-Route (when
        ``record_route_from`` is the inbound socket) and our Via; (destination, local).
        Raises SipParseError with the reply (478, 503; 482 when the hop is this router's
        own socket) when the hop cannot be reached."""
        if address is None:
            raise SipParseError(478, f"Unresolvable destination ({hop.host})")
        dest = Endpoint(hop.proto, address, hop.port)
        if self.transports.refuses(dest):
            raise SipParseError(482, f"Loop Detected (next hop {dest} is this router)")
        local = self.transports.local_for(dest, socket)
        if local is None:
            raise SipParseError(503, f"No {hop.proto} socket to reach {dest}")
        if record_route_from is not None:
            self._add_record_route(req, record_route_from, local, rr_params)
        req.prepend_via(f"SIP/2.0/{local.proto.upper()} "
                        f"{format_hostport(local.host, local.port)};branch={branch_id}")
        return dest, local

    @staticmethod
    def _add_record_route(req: Request, inbound: Endpoint, outbound: Endpoint,
                          params: str = "") -> None:
        """One Record-Route, or two when the request changes transport or interface."""
        if inbound == outbound:
            req.prepend_header("Record-Route", record_route_value(inbound, False, params))
            return
        req.prepend_header("Record-Route", record_route_value(inbound, True, params))
        req.prepend_header("Record-Route", record_route_value(outbound, True, params))

    def _next_hop(self, req: Request, target: Target) -> NextHop:
        """$du, else the top Route (loose routing; strict routers handled), else the R-URI."""
        if target.dst_uri:
            return next_hop(target.dst_uri)
        routes = req.routes
        if routes:
            top = routes[0].uri
            if isinstance(top, SipUri) and not top.lr:
                # Strict next hop (RFC 3261 §16.6 step 6): it gets the route as R-URI.
                req.pop_route()
                req.append_header("Route", f"<{req.ruri}>")
                req.set_ruri(str(top))
            return next_hop(str(top))
        return next_hop(req.ruri)

    def forward_stateless(self, msg: ScriptMessage, uri: str | None = None) -> bool:
        """Kamailio's forward(): no transaction; retransmissions take the same path."""
        req: Request = msg.sip  # type: ignore[assignment]
        if not self.prepare_request(msg):
            return False
        target = Target(uri or msg.ruri, msg.dst_uri if uri is None else None, msg.socket)
        if target.uri != req.ruri:
            req.set_ruri(target.uri)
        try:
            hop = self._next_hop(req, target)
        except SipParseError as exc:
            self.send_reply(msg, exc.status, exc.reason)
            return False
        known, address = self.router.resolver.cached(hop.host)
        if not known:
            self.router.spawn(self._resolve_and_forward, msg, hop, target.socket)
            return True
        return self._forward_to(msg, hop, address, target.socket)

    async def _resolve_and_forward(self, msg: ScriptMessage, hop: NextHop,
                                   socket: str | None) -> None:
        address = await self.router.resolver.resolve(hop.host)
        self._forward_to(msg, hop, address, socket)

    def _forward_to(self, msg: ScriptMessage, hop: NextHop, address: str | None,
                    socket: str | None) -> bool:
        req: Request = msg.sip  # type: ignore[assignment]
        try:
            dest, local = self._stamp_outgoing(
                req, hop, address, socket, msg.local if msg.record_route else None,
                self._stateless_branch(req),
                msg.record_route if isinstance(msg.record_route, str) else "")
        except SipParseError as exc:
            self.send_reply(msg, exc.status, exc.reason)
            return False
        self.transports.send(req.to_bytes(), dest, local, None)
        self.fwd_requests.value += 1
        return True

    @staticmethod
    def _stateless_branch(req: Request) -> str:
        """RFC 3261 §16.11: the same request (retransmission) always gets the same branch."""
        via = req.via
        seed = via.branch if via.is_rfc3261 else (
            f"{req.call_id}|{req.from_tag}|{req.cseq.number}|{req.ruri}")
        method = "INVITE" if req.method in ("ACK", "CANCEL") and not via.branch else req.method
        digest = hashlib.blake2s(wire_bytes(f"{seed}|{method}"), digest_size=12).hexdigest()
        return f"{MAGIC_COOKIE}sl{digest}"

    # == record-route and loose routing (rr module) ============================================
    def loose_route(self, msg: ScriptMessage) -> bool:
        """RFC 3261 §16.4: consume our own Route entries; True when the request had Route."""
        req: Request = msg.sip  # type: ignore[assignment]
        identity = self.identity
        routes = req.routes
        strict = bool(routes) and identity.is_my_uri(req.ruri)
        if strict:
            # The previous hop was a strict router: the R-URI is our Record-Route entry and
            # the real R-URI is the last Route value.
            values = [str(r) for r in routes]
            req.remove_header("Route")
            for value in values[:-1]:
                req.append_header("Route", value)
            req.set_ruri(str(routes[-1].uri))
            routes = req.routes
        if not routes:
            return strict
        first = routes[0].uri
        if isinstance(first, SipUri) and identity.is_me(first.host_ip, first.port):
            req.pop_route()
            if first.params.get("r2") is not None and len(routes) > 1:
                second = routes[1].uri
                if isinstance(second, SipUri) and identity.is_me(second.host_ip, second.port):
                    req.pop_route()
        return True

