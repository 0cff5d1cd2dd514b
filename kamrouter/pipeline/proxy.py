"""The proxy pipeline of one router process (RFC 3261 §16), sans-IO: a datagram in, bytes to
addresses out.

``Proxy.on_message(data, source, local)`` takes what a transport received; what the proxy
sends leaves through ``transports.send``; time is tm's scheduler; tasks (an ``async`` hook, a
DNS lookup) start through ``spawn``. The router (:mod:`kamrouter.core.router`) wires these to
the sockets, the timer loop and its nursery; a test wires them to lists and a fake clock
(``tests/support/pipeline.py``).

One INVITE, stage by stage:

1. a last-resort guard (:class:`kamrouter.guard.InputGuard`), parse
   (:func:`kamrouter.sip.parse`: lazy, header-count limits), loop detection and the Via
   ``received`` / ``rport`` stamp (:mod:`.inbound`);
2. tm: a retransmission, an ACK or a CANCEL of a known transaction ends here;
3. the script's request_route (:mod:`.hooks`: plain or async, per-call order, parking);
4. tm.relay (:meth:`Proxy.relay`): one branch per destination; for each the branch route,
   the next hop (:func:`.outbound.choose_next_hop`), DNS, Max-Forwards, our Via and
   Record-Route (:func:`.outbound.stamp`; with a flow token, :mod:`.flow`, on the side of a
   WebSocket client); never to one of the router's own sockets (482);
   then tm sends it and arms its timers;
5. replies: reply_route, then tm (matched by branch) or, with no transaction, on to the next
   Via (:func:`.replies.upstream_hop`); failure routes when every branch failed.

Stateless answers (sl, parse errors, 482/483/503) are built by :mod:`.replies`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kamrouter.guard import sip_guards
from kamrouter.net import Endpoint
from kamrouter.pipeline import inbound, outbound, replies
from kamrouter.pipeline.addressing import Identity, NextHop, next_hop
from kamrouter.pipeline.flow import FlowTokens, flow_uri
from kamrouter.pipeline.handoff import HandoffPort, Handoffs, route_mark
from kamrouter.pipeline.hooks import HookRunner, Spawn
from kamrouter.script.loader import Script
from kamrouter.script.message import RouteState, ScriptMessage, Target, route_state
from kamrouter.script.watch import HookTimer
from kamrouter.sip import (HeaderLimits, Request, Response, SipLimitError, SipParseError,
                           SipUri, make_request, parse)
from kamrouter.stats import StatsRegistry
from kamrouter.tm import Branch, Transaction, TransactionLayer, TxnState

log = logging.getLogger("kamrouter.proxy")

#: Server INVITE states an ACK of ours belongs to (it ACKs our final >= 300).
_ACKABLE = (TxnState.COMPLETED, TxnState.CONFIRMED)

COUNTED_METHODS = ("invite", "cancel", "ack", "bye", "info", "register", "subscribe", "notify",
                   "message", "options", "prack", "update", "refer", "publish")


class Transports(Protocol):
    """Where the pipeline's bytes go (the router's :class:`kamrouter.transport.Transports`)."""

    def send(self, data: bytes, dest: Endpoint, local: Endpoint | None,
             on_error: Callable[[], None] | None) -> None: ...

    def local_for(self, dest: Endpoint, socket: str | None = None) -> Endpoint | None: ...

    def refuses(self, dest: Endpoint) -> bool:
        """``dest`` is one of the router's own addresses (counted; nothing goes there)."""

    def alias(self, alias: Endpoint, remote: Endpoint) -> None:
        """Send what goes to ``alias`` over the connection from ``remote`` (RFC 5923)."""


class Resolver(Protocol):
    def cached(self, host: str) -> tuple[bool, str | None]: ...

    async def resolve(self, host: str) -> str | None: ...


class Destinations(Protocol):
    """RFC 3263 targets of a next hop, blocked destinations left out
    (:class:`kamrouter.dns.destinations.Destinations`)."""

    def cached(self, hop: NextHop) -> list[Endpoint] | None: ...

    async def resolve(self, hop: NextHop) -> list[Endpoint]: ...


class Blocklist(Protocol):
    def add(self, dest: Endpoint, reason: str, expire: float | None = None) -> None: ...


@dataclass(slots=True)
class DnsFailover:
    """What retrying a branch on the next target of its next hop's name needs: the request
    as it was before our Via and Record-Route, and the targets not tried yet."""

    request: Request
    hop: NextHop
    remaining: list[Endpoint]
    socket: str | None
    inbound: Endpoint | None
    record_route: bool | str
    tries: int = 0


def failover_reason(branch: Branch) -> str | None:
    """Why a failed branch's destination counts as down: no answer at all before the
    timeout, a send error, or a 503; None for any other failure."""
    if branch.faked:
        if branch.status == 408 and branch.timed_out and not branch.replied:
            return "timeout"
        return "send error" if branch.status == 477 else None
    return "503" if branch.status == 503 else None


class Proxy:
    """Request and reply processing of one router process; the tm layer's hooks."""

    def __init__(self, *, transports: Transports, resolver: Resolver,
                 destinations: Destinations, blocklist: Blocklist, failover_max: int,
                 blocklist_503: bool, spawn: Spawn,
                 script: Callable[[], Script], stats: StatsRegistry,
                 tm_factory: Callable[[Proxy], TransactionLayer],
                 on_terminated: Callable[[Transaction], None], identity: Identity,
                 max_message_size: int, limits: HeaderLimits, max_forwards: int,
                 slow_hook_ms: int,
                 stray_reply_checks: list[Callable[[Response, Endpoint], bool]],
                 handoff: HandoffPort | None = None) -> None:
        """``handoff``: this worker's end of the hand-off between worker processes (None:
        the only process)."""
        self.transports = transports
        self.resolver = resolver
        self.destinations = destinations
        self.blocklist = blocklist
        #: DNS failover: how many more targets a branch may try (0: off).
        self.failover_max = failover_max
        self.blocklist_503 = blocklist_503
        self._spawn = spawn
        self._on_terminated = on_terminated
        self.identity = identity
        self.max_size = max_message_size
        self.limits = limits
        #: Checks a reply without a transaction must pass to be forwarded statelessly.
        self.stray_reply_checks = stray_reply_checks
        self.default_max_forwards = max_forwards
        #: RFC 5626 flow tokens in our Record-Route entries (and Path, for the registrar).
        self.flow_tokens = FlowTokens()
        self.tm = tm_factory(self)
        #: What belongs to another worker process goes there (:mod:`.handoff`).
        self.handoffs = Handoffs(handoff, self.tm, identity) if handoff is not None else None
        self._route_mark = route_mark(handoff.index) if handoff is not None else ""
        counter = stats.counter
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
        self.dns_failovers = counter("dns", "failovers")
        self.bad_msg_hdr = counter("core", "bad_msg_hdr")
        self.limit_exceeded = counter("core", "msg_limit_exceeded")
        self.sl_sent = counter("sl", "sent_replies")
        self.sl_sent_err = counter("sl", "sent_err_replies")
        self.sl_by_class = {c: counter("sl", f"{c}xx_replies") for c in range(1, 7)}
        self.sl_acks = counter("sl", "received_ACKs")
        self.hooks = HookRunner(script, spawn, self, self.tm.params.fr_timer,
                                HookTimer(slow_hook_ms, counter("core", "script_slow_hooks")),
                                counter("core", "script_errors"), self.err_requests)
        self.guards = sip_guards(stats, log)
        self._loop_marker = self.tm.branch_prefix.encode()

    # == receiving ==========================================================================
    def on_message(self, data: bytes, source: Endpoint, local: Endpoint,
                   origin: int | None = None) -> None:
        """Entry point of the transports: one datagram or one framed stream message (or a
        datagram that worker ``origin`` received and passed on to this one).

        The last-resort guard of both SIP input paths: whatever a bug raises while the
        message is handled is counted and logged (:class:`~kamrouter.guard.InputGuard`) and
        answered with 500 when the message is a request that can be answered."""
        try:
            self._receive(data, source, local, origin)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the receive loop
            self._internal_error(exc, data, source, local)

    def _receive(self, data: bytes, source: Endpoint, local: Endpoint,
                 origin: int | None) -> None:
        try:
            msg = parse(data, max_size=self.max_size, limits=self.limits)
        except SipParseError as exc:
            self._malformed(exc, source, local)
            return
        try:
            handoffs = self.handoffs
            if handoffs is not None and handoffs.divert(msg, data, source, local, origin):
                return
            if isinstance(msg, Request):
                if self._loop_marker in data and inbound.is_looped(msg, self.tm.branch_prefix):
                    self._stateless_reply(msg, source, local, 482, "Loop Detected")
                    return
                self.on_request(msg, source, local)
            else:
                self.on_reply(msg, source, local)
        except SipParseError as exc:
            # A header the route read lazily turned out to be malformed.
            self._malformed(exc, source, local, msg)

    def _internal_error(self, exc: Exception, data: bytes, source: Endpoint,
                        local: Endpoint) -> None:
        """Count and log a bug hit by this message; answer 500 if it is a request (parsed
        again: this is the rare path, the hot one keeps no state for it)."""
        self.guards.get(source.proto, self.guards["tcp"]).failed(source, exc)
        try:
            msg = parse(data, max_size=self.max_size, limits=self.limits)
            if isinstance(msg, Request) and msg.method != "ACK":
                self._stateless_reply(msg, source, local, 500, "Server Internal Error")
        except Exception:  # noqa: BLE001 - too broken even to answer: counted above
            pass

    def _malformed(self, exc: SipParseError, source: Endpoint, local: Endpoint,
                   parsed: Request | Response | None = None) -> None:
        msg = parsed if parsed is not None else exc.message
        if isinstance(exc, SipLimitError):
            self.limit_exceeded.value += 1
        if not isinstance(msg, Request):
            if msg is not None:
                self.err_replies.value += 1
            self.bad_msg_hdr.value += 1
            log.debug("dropping malformed message from %s: %s", source, exc)
            return
        self.err_requests.value += 1
        log.info("bad request from %s: %s", source, exc)
        if msg.method != "ACK":
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
        inbound.stamp_received(req, source)
        if source.proto != "udp":
            alias = inbound.via_alias(req, source)
            if alias is not None:
                self.transports.alias(alias, source)
        self.hooks.request_route(ScriptMessage(req, source, local))

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
        reply_route = self.hooks.script.reply_route
        if reply_route is not None:
            msg = ScriptMessage(reply, source, local, route="reply")
            msg.status, msg.reason = reply.status, reply.reason
            if self.hooks.call(reply_route, msg) is False:
                self.drop_replies.value += 1
                return
        if not self.tm.receive_reply(reply):
            self.forward_reply_stateless(reply, source)

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
            # What the request route stored so far becomes the transaction's (vars and
            # flags created later go there directly: ScriptMessage reads them through txn).
            txn.context = RouteState(msg._vars, msg._flags)
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
        return self.hooks.call(self.hooks.resolve(handler), msg) is not False

    def on_branch_failed(self, txn: Transaction, branch: Branch) -> bool:
        """Block a destination that timed out, could not be reached (or answered 503, when
        configured); retry the branch on its name's next DNS target (use_dns_failover)."""
        why = failover_reason(branch)
        if why is None:
            return False
        if branch.dest is not None and (why != "503" or self.blocklist_503):
            self.blocklist.add(branch.dest, why)
        failover: DnsFailover | None = branch.retry
        if failover is None:
            return False
        retry = txn.add_branch(failover.request.copy(), None, None, self.tm.branch_id(
            txn, len(txn.branches), route_state(txn).loop_tag or ""))
        retry.fr_timer, retry.fr_inv_timer = branch.fr_timer, branch.fr_inv_timer
        retry.flags, retry.dst_uri = branch.flags, branch.dst_uri
        self.dns_failovers.value += 1
        self.fwd_requests.value += 1
        log.info("branch to %s failed (%s): trying %s", branch.dest, why,
                 failover.remaining[0])
        self._send_branch(failover.inbound, retry, failover.hop, failover.remaining,
                          failover.socket, failover.record_route, failover.tries + 1)
        return True

    def on_failure(self, txn: Transaction, handler: Any) -> None:
        best = txn.best_branch()
        msg = self._context(txn, "failure", best.reply if best else None)
        if best is not None:
            msg.branch = best
            msg.branch_index = best.index
            msg.status = best.status
            msg.reason = best.reply.reason if best.reply is not None else ""
        self.hooks.failure_route(txn, handler, msg)

    def on_terminated(self, txn: Transaction) -> None:
        self._on_terminated(txn)

    @staticmethod
    def _context(txn: Transaction, route: str, reply: Response | None,
                 sip: Request | Response | None = None) -> ScriptMessage:
        """A script message for a route that runs after request_route: a failure route
        edits a copy of the relayed request, a reply route reads ``sip``, the reply."""
        state = route_state(txn)
        if sip is None:
            sip = (state.relay_request or txn.request).copy()
        msg = ScriptMessage(sip, txn.source, txn.local, route=route)
        msg.txn = txn  # its vars and flags are the transaction's
        msg.record_route = state.record_route
        msg.add_path = state.add_path
        msg.mf_done = True
        msg.reply = reply
        return msg

    # == replying ==========================================================================
    def send_reply(self, msg: ScriptMessage, status: int, reason: str | None = None,
                   headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> bool:
        """sl_send_reply: statefully when the message has a transaction, else statelessly."""
        if not isinstance(msg.sip, Request) or msg.method == "ACK":
            return False
        msg.replied = True
        txn = msg.txn
        if txn is not None:
            if txn.final_status:
                return False
            txn.reply_local(status, reason, headers, body)
            return True
        self._stateless_reply(msg.sip, msg.source, msg.local, status, reason, headers, body)
        return True

    def _stateless_reply(self, req: Request, source: Endpoint, local: Endpoint | None,
                         status: int, reason: str | None,
                         headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> None:
        reply = replies.stateless_reply(req, status, reason, headers, body)
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
        if the stray-reply checks (the relay policy) let it go there."""
        hop = replies.upstream_hop(reply, self.identity)
        if hop is None or not all(check(reply, source) for check in self.stray_reply_checks):
            self.drop_replies.value += 1
            return
        # The next Via may name a host: resolved like a next hop (never by a blocking
        # sendto), and the address checked against our own sockets by the send.
        known, address = self.resolver.cached(hop.host)
        if not known:
            self._spawn(self._resolve_and_forward_reply, reply, hop)
            return
        self._forward_reply_to(reply, hop, address)

    async def _resolve_and_forward_reply(self, reply: Response, hop: NextHop) -> None:
        self._forward_reply_to(reply, hop, await self.resolver.resolve(hop.host))

    def _forward_reply_to(self, reply: Response, hop: NextHop, address: str | None) -> None:
        if address is None:
            self.drop_replies.value += 1
            return
        dest = Endpoint(hop.proto, address, hop.port)
        self.transports.send(reply.bytes_without_top_via(), dest, None, None)
        self.fwd_replies.value += 1

    # == relaying ============================================================================
    @staticmethod
    def decrement_max_forwards(msg: ScriptMessage, limit: int) -> bool:
        """Max-Forwards − 1, once per message; False when it is exhausted (maxfwd)."""
        if msg.mf_done:
            return True
        if not outbound.decrement_max_forwards(msg.sip, limit):  # type: ignore[arg-type]
            return False
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
        # Only a failure route's copy is kept: the request route relays the transaction's
        # own request, which tm slims once the final is sent.
        state.relay_request = msg.sip if msg.sip is not txn.request else None  # type: ignore[assignment]
        state.record_route = msg.record_route
        state.add_path = msg.add_path
        if state.loop_tag is None:
            state.loop_tag = inbound.loop_tag(msg.sip, msg.received_ruri)  # type: ignore[arg-type]
        targets = [Target(msg.ruri, msg.dst_uri, msg.socket, msg.path)] + msg.branches
        msg.branches = []
        started = 0
        txn.building = True  # no verdict until every branch of this round exists
        try:
            for target in targets:
                started += self._start_branch(msg, txn, state, target)
        finally:
            txn.building = False
        self.fwd_requests.value += started
        if not txn.final_status and not any(b.pending for b in txn.branches):
            if msg.route != "failure":  # in a failure route, end_failure() decides
                txn.all_branches_done()
            msg.replied = True
        return started > 0

    def _start_branch(self, msg: ScriptMessage, txn: Transaction, state: RouteState,
                      target: Target) -> bool:
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
        branch = txn.add_branch(req, None, None,
                                self.tm.branch_id(txn, index, state.loop_tag or ""))
        if target.fr_timer is not None:
            branch.fr_timer = target.fr_timer
        if target.fr_inv_timer is not None:
            branch.fr_inv_timer = target.fr_inv_timer
        branch.flags = target.branch_flags
        branch.dst_uri = target.dst_uri or target.uri
        try:
            hop = outbound.choose_next_hop(req, target.dst_uri)
        except SipParseError as exc:
            branch.fail(exc.status, exc.reason)
            return False
        self._dispatch_branch(msg.local, branch, hop, target.socket, state.record_route)
        return True

    def _branch_route(self, msg: ScriptMessage, txn: Transaction, target: Target,
                      req: Request, index: int) -> bool:
        """Run the armed branch route on this branch's own copy; False drops the branch."""
        branch_msg = ScriptMessage(req, msg.source, msg.local, route="branch")
        branch_msg.txn = txn  # its vars and flags are the transaction's
        branch_msg.target = target
        branch_msg.dst_uri = target.dst_uri
        branch_msg.branch_index = index
        if self.hooks.call(self.hooks.resolve(txn.branch_handler), branch_msg) is False:
            return False
        target.dst_uri = branch_msg.dst_uri
        return True

    def _dispatch_branch(self, inbound_socket: Endpoint | None, branch: Branch, hop: NextHop,
                         socket: str | None, record_route: bool | str) -> None:
        """Send now when the next hop's targets are known, else after a DNS lookup."""
        destinations = self.destinations.cached(hop)
        if destinations is not None:
            self._send_branch(inbound_socket, branch, hop, destinations, socket, record_route)
        else:
            self._spawn(self._resolve_and_send, inbound_socket, branch, hop, socket,
                        record_route)

    async def _resolve_and_send(self, inbound_socket: Endpoint | None, branch: Branch,
                                hop: NextHop, socket: str | None, record_route: bool | str
                                ) -> None:
        destinations = await self.destinations.resolve(hop)
        if branch.pending:
            self._send_branch(inbound_socket, branch, hop, destinations, socket, record_route)

    def _send_branch(self, inbound_socket: Endpoint | None, branch: Branch, hop: NextHop,
                     destinations: list[Endpoint], socket: str | None,
                     record_route: bool | str, tries: int = 0) -> None:
        """Send ``branch`` to the first of ``destinations``; ``tries`` DNS failovers led
        here."""
        if len(destinations) > 1 and tries < self.failover_max:
            # Keep what a retry on the next target needs (only for names with several).
            branch.retry = DnsFailover(branch.request.copy(), hop, destinations[1:], socket,
                                       inbound_socket, record_route, tries)
        try:
            branch.dest, branch.local = self._stamp_outgoing(
                branch.request, hop, destinations, socket,
                inbound_socket if record_route else None, branch.branch_id,
                record_route if isinstance(record_route, str) else "", branch.txn.source,
                isinstance(branch.txn.context, RouteState) and branch.txn.context.add_path)
        except SipParseError as exc:
            branch.fail(exc.status, exc.reason)
            return
        branch.start(branch.request.to_bytes())

    def _stamp_outgoing(self, req: Request, hop: NextHop, destinations: list[Endpoint],
                        socket: str | None, record_route_from: Endpoint | None,
                        branch_id: str, rr_params: str = "", source: Endpoint | None = None,
                        add_path: bool = False) -> tuple[Endpoint, Endpoint]:
        """The first resolved destination and the local socket for it, our Via and
        Record-Route (and Path, ``add_path``) stamped, with a flow token naming
        ``source``'s or the destination's connection where that side is a WebSocket
        client; SipParseError (478, 503; 482 when the hop is this router's own
        socket) when the hop cannot be reached."""
        if not destinations:
            raise SipParseError(478, f"Unresolvable destination ({hop.host})")
        dest = destinations[0]
        if self.transports.refuses(dest):
            raise SipParseError(482, f"Loop Detected (next hop {dest} is this router)")
        local = self.transports.local_for(dest, socket)
        if local is None:
            raise SipParseError(503, f"No {hop.proto} socket to reach {dest}")
        flows = self.flow_tokens
        marked = record_route_from is not None or add_path
        # A connection stays in the worker that holds it, and a flow token verifies only
        # in the worker that made it: the dialog's requests go to this one (which hands
        # them to another worker holding the destination's connection).
        mark = self._route_mark if marked and (dest.reliable or (
            source is not None and source.reliable)) else ""
        outbound.stamp(req, local, branch_id, record_route_from, rr_params,
                       (flows.for_source(source, req), flows.for_destination(dest, req))
                       if marked else (None, None), add_path, mark)
        return dest, local

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

    def forward_stateless(self, msg: ScriptMessage, uri: str | None = None) -> bool:
        """Kamailio's forward(): no transaction; retransmissions take the same path."""
        req: Request = msg.sip  # type: ignore[assignment]
        if not self.prepare_request(msg):
            return False
        target = Target(uri or msg.ruri, msg.dst_uri if uri is None else None, msg.socket)
        if target.uri != req.ruri:
            req.set_ruri(target.uri)
        try:
            hop = outbound.choose_next_hop(req, target.dst_uri)
        except SipParseError as exc:
            self.send_reply(msg, exc.status, exc.reason)
            return False
        destinations = self.destinations.cached(hop)
        if destinations is None:
            self._spawn(self._resolve_and_forward, msg, hop, target.socket)
            return True
        return self._forward_to(msg, hop, destinations, target.socket)

    async def _resolve_and_forward(self, msg: ScriptMessage, hop: NextHop,
                                   socket: str | None) -> None:
        self._forward_to(msg, hop, await self.destinations.resolve(hop), socket)

    def _forward_to(self, msg: ScriptMessage, hop: NextHop, destinations: list[Endpoint],
                    socket: str | None) -> bool:
        req: Request = msg.sip  # type: ignore[assignment]
        try:
            dest, local = self._stamp_outgoing(
                req, hop, destinations, socket, msg.local if msg.record_route else None,
                outbound.stateless_branch(req),
                msg.record_route if isinstance(msg.record_route, str) else "", msg.source,
                msg.add_path)
        except SipParseError as exc:
            self.send_reply(msg, exc.status, exc.reason)
            return False
        self.transports.send(req.to_bytes(), dest, local, None)
        self.fwd_requests.value += 1
        return True

    # == record-route and loose routing (rr module) ============================================
    def loose_route(self, msg: ScriptMessage) -> bool:
        """RFC 3261 §16.4: consume our own Route entries; True when the request had Route.
        An entry of ours with a flow token sends the request over that client's connection
        (RFC 5626 §5.3), not to its Request-URI (a WebSocket client's ``.invalid`` host)."""
        ours: list[SipUri] = []
        routed = outbound.loose_route(msg.sip, self.identity, ours)  # type: ignore[arg-type]
        for uri in ours:
            flow = self.flow_tokens.decode(uri.user) if uri.user else None
            if flow is not None and flow != msg.source:
                msg.dst_uri = flow_uri(flow)
                break
        return routed
