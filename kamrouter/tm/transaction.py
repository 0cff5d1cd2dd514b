"""Stateful proxy transactions (RFC 3261 §16–17), sans-IO.

A :class:`Transaction` is Kamailio's *cell*: one server transaction (the request we received)
plus the client transactions we started for it, one :class:`Branch` each. Nothing here touches
a socket or a clock directly: bytes leave through the layer's ``send`` callable, time comes
from its :class:`~kamrouter.timers.Scheduler`, and routing decisions (reply route, failure
route) are delegated to the layer's hooks.

Their states and every allowed change of state are in one table, :mod:`kamrouter.tm.states`
(with the pictures); every change is a lookup in that table (``_to``), which refuses an event
the current state does not allow.
Retransmissions over UDP use the one doubling timer of :mod:`kamrouter.tm.retransmit`.

Memory: a transaction holds what its remaining work reads. Once routed, its request is kept
as the bytes it serialises to (:meth:`Transaction.routed`) and rebuilt for a local reply or
a failure route; a sent branch keeps the bytes it sent (shared with their retransmission)
for its CANCEL and ACK, and forgets them once final; a branch and a retransmission are
their timers' callbacks themselves.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kamrouter.net import Endpoint
from kamrouter.sip import Request, Response, generate_tag, make_ack, make_cancel, make_response
from kamrouter.tm.retransmit import Retransmission
from kamrouter.tm.states import CLIENT, SERVER, BranchState, CancelState, TxnState

if TYPE_CHECKING:
    from kamrouter.timers import Timer
    from kamrouter.tm.layer import TransactionLayer

# The states, as short local names (the hot path compares them by identity).
PROCEEDING, COMPLETED, CONFIRMED, ACCEPTED, TERMINATED = (
    TxnState.PROCEEDING, TxnState.COMPLETED, TxnState.CONFIRMED, TxnState.ACCEPTED,
    TxnState.TERMINATED)
CALLING, B_PROCEEDING, B_ACCEPTED, B_COMPLETED, B_TERMINATED = (
    BranchState.CALLING, BranchState.PROCEEDING, BranchState.ACCEPTED, BranchState.COMPLETED,
    BranchState.TERMINATED)

#: Status of a locally generated timeout reply, and of a reply we could not send.
TIMEOUT_STATUS, SEND_ERROR_STATUS = 408, 477

#: The header lines a transaction keeps of its request once its final is sent (enough for a
#: local reply) when it is not kept as bytes already (:meth:`Transaction.routed`); a sent
#: branch keeps the bytes it sent (for its CANCEL and ACK) until it is final: a transaction
#: costs what its remaining work needs, not whole parsed messages.
_TXN_KEEPS = frozenset(("via", "from", "to", "call-id", "cseq"))


def reply_priority(status: int, faked: bool = False) -> int:
    """Kamailio's best-response order: lower wins (6xx, then 3xx, 4xx, 5xx)."""
    cls = status // 100
    if cls == 6:
        prio = 1000 + status % 100
    elif cls == 3:
        prio = 3000 + status % 100
    elif cls == 4:
        prio = (4000 if status in (401, 407, 415, 420, 484) else 4100) + status % 100
    elif cls == 5:
        prio = 5000 + status % 100
    elif cls == 2:
        prio = status % 100
    elif cls == 1:
        prio = 11000 + status % 100
    elif status >= 700:
        prio = 10000 + status
    else:
        prio = 32000 + status
    return prio + (1 if faked else 0)


class Branch:
    """One client transaction of a proxied request.

    Beside :attr:`state` (see :mod:`kamrouter.tm.states`): ``status`` is the highest status
    seen so far, ``faked`` says the final in ``reply`` is one of ours (``local final``),
    ``replied`` that the next hop answered at all, ``timed_out`` that the fr timer fired; the
    CANCEL has its own :attr:`cancel_state`.
    """

    __slots__ = (
        "txn", "index", "leg", "_request", "_sent", "dest", "local", "branch_id", "state",
        "status", "reply", "faked", "replied", "timed_out", "fr_timer", "fr_inv_timer",
        "_retr", "_fr", "_wait", "cancel_state", "cancel_reason", "_cancel_retr", "ack_data",
        "flags", "dst_uri", "retry",
    )

    def __init__(self, txn: Transaction, index: int, request: Request, dest: Endpoint | None,
                 local: Endpoint | None, branch_id: str) -> None:
        self.txn = txn
        self.index = index
        self.leg = txn.leg
        self._request: Request | None = request
        #: The bytes sent, once sent (while ``_request`` is None).
        self._sent = b""
        self.dest = dest
        self.local = local
        self.branch_id = branch_id
        self.state = CALLING
        self.status = 0
        self.reply: Response | None = None
        self.faked = False
        self.replied = False
        self.timed_out = False
        self.fr_timer = txn.fr_timer
        self.fr_inv_timer = txn.fr_inv_timer
        self._retr: Retransmission | None = None
        self._fr: Timer | None = None
        self._wait: Timer | None = None
        self.cancel_state = CancelState.NONE
        #: Reason header of our CANCEL (RFC 3326), e.g. copied from the caller's CANCEL.
        self.cancel_reason: str | None = None
        self._cancel_retr: Retransmission | None = None
        self.ack_data = b""
        #: Branch flags (Kamailio's ``$bf``), set by the pipeline from the destination set.
        self.flags = 0
        #: Where the branch was sent: its ``$du``, else its Request-URI (set by the pipeline).
        self.dst_uri = ""
        #: What the pipeline needs to retry this branch on another target (DNS failover:
        #: :class:`kamrouter.pipeline.proxy.DnsFailover`); tm never reads it.
        self.retry: Any = None

    @property
    def request(self) -> Request:
        """The request of this branch: until sent, the copy the pipeline prepares; then
        rebuilt from the bytes sent when read (for its CANCEL, kept for its ACK; for an ACK
        alone); gone once shed (:meth:`shed`)."""
        request = self._request
        return request if request is not None else Request.from_own_bytes(self._sent)

    @property
    def pending(self) -> bool:
        """Still waiting for a final reply."""
        return self.state is CALLING or self.state is B_PROCEEDING

    def _to(self, event: str) -> None:
        self.state = CLIENT[self.state, event]

    # -- sending -----------------------------------------------------------------
    def start(self, data: bytes) -> None:
        """Send the request (``dest``/``local`` are set) and arm its timers."""
        layer = self.txn.layer
        dest = self.dest
        assert dest is not None
        # Sent: from here on the branch builds only its CANCEL and ACK from the request,
        # and the bytes are kept anyway while they are retransmitted (UDP).
        self._request, self._sent = None, data
        layer.send(data, dest, self.local, self._send_failed)
        if not dest.reliable:
            self._retr = Retransmission(layer, data, dest, self.local)
        self._fr = layer.scheduler.call_later(self.fr_timer, self)

    def _stop_retransmissions(self) -> None:
        if self._retr is not None:
            self._retr.stop()
            self._retr = None

    def _send_failed(self) -> None:
        """The transport could not deliver (e.g. TCP connect refused): fail the branch now."""
        if self.pending:
            self.fail(SEND_ERROR_STATUS, "Unfortunately error on sending to next hop")

    def __call__(self) -> None:
        """One of its timers fired: the fr timer while pending, the wait timer once final
        (it never has both armed). The branch is their callback itself: no bound method
        per arming (64 bytes each)."""
        if self.pending:
            self._fr_expired()
        else:
            self.release()

    def _fr_expired(self) -> None:
        self.timed_out = True
        if self.status and self.txn.is_invite:
            # It rang but never answered: tell it to stop before we give up on it.
            self._send_cancel()
        self.fail(TIMEOUT_STATUS, "Request Timeout")

    def fail(self, status: int, reason: str) -> None:
        """End this pending branch with a final of our own (timeout, send error, a next hop
        that cannot be reached): it counts in the best-response choice like a real one."""
        self._stop_retransmissions()
        self._cancel_fr()
        self._to("local final")
        self.status = status
        self.faked = True
        self.reply = make_response(self.txn.request, status, reason, to_tag=self.txn.local_tag)
        self._linger()
        self.txn.branch_final(self)
        if self.txn.final_status:
            self.shed()

    def _cancel_fr(self) -> None:
        if self._fr is not None:
            self._fr.cancel()
            self._fr = None

    def _linger(self) -> None:
        """Stay matchable for ``wait_timer`` to absorb retransmitted finals."""
        self._wait = self.txn.layer.scheduler.call_later(self.txn.layer.params.wait_timer, self)

    def release(self) -> None:
        """Forget this branch: timers off, reply matching off."""
        self._stop_retransmissions()
        self._cancel_fr()
        self._stop_cancel()
        if self._wait is not None:
            self._wait.cancel()
            self._wait = None
        self._to("released")
        self.txn.layer.forget_branch(self)

    # -- replies -----------------------------------------------------------------
    def receive(self, reply: Response) -> None:
        """A reply whose top Via carries our branch id and whose CSeq method is ours."""
        status = reply.status
        layer = self.txn.layer
        state = self.state
        if state is B_COMPLETED:
            if self.txn.is_invite and status >= 300:
                # A retransmitted final, or the 487 owed after our timeout's CANCEL: ACK it.
                self._send_ack(reply)
            elif self.txn.is_invite and status >= 200 and self.faked:
                # Answered just after we gave up on it: the caller must still get the 2xx.
                self._to("2xx after local final")
                self.txn.relay_reply(self, reply)
                return
            layer.stats_rpl_absorbed.value += 1
            return
        if state is B_ACCEPTED:
            if 200 <= status < 300:  # 2xx retransmission or another 2xx: pass it on
                self.txn.relay_reply(self, reply)
            else:
                layer.stats_rpl_absorbed.value += 1
            return
        self.replied = True
        if status < 200:
            self._provisional(reply)
            return
        self._stop_retransmissions()
        self._cancel_fr()
        self.status = status
        self.reply = reply
        if self.txn.is_invite and status < 300:
            self._to("2xx to INVITE")
        else:
            self._to("final")
            if self.txn.is_invite:
                self._send_ack(reply)
        self._linger()
        self._stop_cancel()
        if layer.hooks.on_branch_reply(self.txn, self, reply):
            self.txn.branch_final(self)
        else:
            self.txn.branch_final(self, drop=True)
        if self.txn.final_status:
            self.shed()

    def shed(self) -> None:
        """This branch and its transaction are final: the reply and the retry are no longer
        read, nor the request, unless an ACK may still be built from it: after a local final
        to an INVITE the real final may still come (``ack_data`` ACKs a retransmitted one)."""
        self.reply = None
        self.retry = None
        self._request = None  # parsed for a CANCEL, or never sent (it failed first)
        if not self.faked or not self.txn.is_invite or self.ack_data:
            self._sent = b""

    def _send_ack(self, reply: Response) -> None:
        """ACK a final >= 300 to our INVITE (hop by hop, RFC 3261 §17.1.1.3)."""
        if not self.ack_data:
            self.ack_data = make_ack(self.request, reply).to_bytes()
        self.txn.layer.send(self.ack_data, self.dest, self.local, None)  # type: ignore[arg-type]

    def _provisional(self, reply: Response) -> None:
        txn = self.txn
        layer = txn.layer
        first = self.state is CALLING
        self._to("1xx")
        if self.status < reply.status:
            self.status = reply.status
        if txn.is_invite:
            self._stop_retransmissions()
            # A provisional switches the branch to fr_inv_timer (restarted on each 1xx).
            self._cancel_fr()
            self._fr = layer.scheduler.call_later(self.fr_inv_timer, self)
            if self.cancel_state is CancelState.PENDING:
                self._send_cancel()
        elif first and self._retr is not None:
            # Non-INVITE keeps retransmitting, at T2 (RFC 3261 §17.1.2.2).
            self._retr.at_t2()
        if layer.hooks.on_branch_reply(txn, self, reply):
            txn.relay_provisional(self, reply)

    # -- CANCEL ----------------------------------------------------------------------
    def cancel(self, reason: str | None = None) -> None:
        """Cancel this INVITE branch (RFC 3261 §9.1: only after it sent a provisional)."""
        if not self.pending or self.cancel_state is CancelState.SENT or not self.txn.is_invite:
            return
        if reason is not None:
            self.cancel_reason = reason
        if self.state is B_PROCEEDING:
            self._send_cancel()
        else:
            self.cancel_state = CancelState.PENDING

    def _send_cancel(self) -> None:
        if self.cancel_state is CancelState.SENT:
            return
        self.cancel_state = CancelState.SENT
        # Kept parsed until final: the 487 owed for the CANCEL gets its ACK built from it too.
        request = self._request = self.request
        cancel = make_cancel(request)
        if self.cancel_reason:
            cancel.append_header("Reason", self.cancel_reason)
        data = cancel.to_bytes()
        layer = self.txn.layer
        dest = self.dest
        assert dest is not None
        layer.send(data, dest, self.local, None)
        if not dest.reliable:
            self._cancel_retr = Retransmission(layer, data, dest, self.local)

    def _stop_cancel(self) -> None:
        if self._cancel_retr is not None:
            self._cancel_retr.stop()
            self._cancel_retr = None

    def cancel_replied(self) -> None:
        """A reply to our CANCEL: stop retransmitting it (the INVITE's 487 follows)."""
        self._stop_cancel()


class Transaction:
    """A server transaction and its branches (Kamailio's transaction *cell*).

    Beside :attr:`state` (see :mod:`kamrouter.tm.states`), three flags qualify
    ``PROCEEDING`` without being states of their own: ``canceled`` (a CANCEL arrived: a
    final from a made-up or timed-out branch becomes 487), ``in_failure`` (the failure route
    runs: no verdict until it ends) and ``building`` (the pipeline is creating a round of
    branches: no verdict until the round exists).
    """

    __slots__ = (
        "layer", "_request", "_routed", "method", "is_invite", "source", "local", "reply_dest",
        "key", "tindex", "tlabel", "state", "branches", "leg", "final_status", "last_reply",
        "last_status", "canceled", "in_failure", "failure_handler", "branch_handler",
        "reply_handler", "fr_timer", "fr_inv_timer", "context", "_local_tag", "_retr", "_wait",
        "_end_event", "_timeout_timer", "_failure_leg", "uac_callback", "building",
    )

    def __init__(self, layer: TransactionLayer, request: Request, source: Endpoint,
                 local: Endpoint | None, reply_dest: Endpoint, key: tuple[object, ...],
                 tindex: int, tlabel: int) -> None:
        self.layer = layer
        self._request: Request | None = request
        #: The request as its bytes once routed (:meth:`routed`), while ``_request`` is None.
        self._routed = b""
        self.method = request.method
        self.is_invite = request.method == "INVITE"
        self.source = source
        self.local = local
        self.reply_dest = reply_dest
        self.key = key
        self.tindex = tindex
        self.tlabel = tlabel
        self.state = PROCEEDING
        self.branches: list[Branch] = []
        #: Serial-forking round; best-response selection looks at the newest leg only.
        self.leg = 0
        self.final_status = 0
        self.last_reply: bytes | None = None
        self.last_status = 0
        self.canceled = False
        self.in_failure = False
        self.failure_handler: Any = None
        self.branch_handler: Any = None
        self.reply_handler: Any = None
        self.fr_timer = layer.params.fr_timer
        self.fr_inv_timer = layer.params.fr_inv_timer
        #: The routing state of the layer above, owned and typed there
        #: (:class:`kamrouter.script.message.RouteState`): tm never looks inside.
        self.context: Any = None
        self._local_tag: str | None = None
        self._retr: Retransmission | None = None
        self._wait: Timer | None = None
        #: The event ``_wait`` ends the transaction by (see the state table).
        self._end_event = ""
        self._timeout_timer: Timer | None = None
        self._failure_leg = 0
        #: Set for requests this proxy originates (e.g. OPTIONS probes): receives the final
        #: status and reply instead of an upstream peer.
        self.uac_callback: Callable[[int, Response | None], None] | None = None
        #: True while the pipeline creates a round of branches: no verdict until it is done.
        self.building = False

    @property
    def request(self) -> Request:
        """The request received, with the routing script's edits (rebuilt from its bytes on
        the first read after :meth:`routed`: by a local reply or a failure route)."""
        request = self._request
        if request is None:
            request = self._request = Request.from_own_bytes(self._routed)
            self._routed = b""
        return request

    def routed(self) -> None:
        """The request route is done with the request: keep it as the bytes it serialises
        to, under a third of what it holds parsed, until read again (rarely: a local
        reply or a failure route; a proxied call's replies never read it)."""
        request = self._request
        if request is not None:
            self._routed = request.to_bytes()
            self._request = None

    @property
    def local_tag(self) -> str:
        """To-tag of every reply this proxy generates itself for the transaction."""
        if self._local_tag is None:
            self._local_tag = generate_tag()
        return self._local_tag

    # -- branches ---------------------------------------------------------------------
    def add_branch(self, request: Request, dest: Endpoint | None, local: Endpoint | None,
                   branch_id: str) -> Branch:
        """Register a branch; the pipeline sets ``dest``/``local``, serialises ``request`` and
        calls ``branch.start`` (maybe after a DNS lookup: until then it is pending)."""
        if self.in_failure and not self._leg_started():
            self.leg += 1
        branch = Branch(self, len(self.branches), request, dest, local, branch_id)
        self.branches.append(branch)
        self.layer.register_branch(branch)
        return branch

    def _leg_started(self) -> bool:
        return any(b.leg == self.leg and b.pending for b in self.branches)

    def branch_final(self, branch: Branch, drop: bool = False) -> None:
        """A branch got (or faked) its final reply: relay, cancel others, or pick the best."""
        status = branch.status
        if self.final_status and not (self.is_invite and 200 <= status < 300):
            return  # a final was already sent upstream; only 2xx to INVITE still pass
        if 200 <= status < 300:
            if drop:
                return
            self.relay_reply(branch, branch.reply)  # type: ignore[arg-type]
            if self.is_invite:
                self.cancel_branches(reason="SIP;cause=200;text=\"Call completed elsewhere\"")
            return
        if status >= 600 and self.is_invite:
            self.cancel_branches(reason=f"SIP;cause={status}")
        if drop:
            branch.reply = None
        elif not self.canceled and self.layer.hooks.on_branch_failed(self, branch):
            return  # retried on the next DNS target: that branch decides
        if self.in_failure or self.building:
            return
        if any(b.pending for b in self.branches):
            return
        self.all_branches_done()

    def all_branches_done(self) -> None:
        """Every branch is final and none was 2xx: failure route, then the best reply."""
        if self.failure_handler is not None:
            handler, self.failure_handler = self.failure_handler, None
            self.in_failure = True
            self._failure_leg = self.leg
            self.layer.hooks.on_failure(self, handler)
            return
        self.send_best_reply()

    def end_failure(self) -> None:
        """The failure route returned: wait for its new branches, or send the best reply.

        The failure route runs again only when it started a new leg that failed at once
        (e.g. a send error); a route that re-arms itself without relaying cannot loop.
        """
        self.in_failure = False
        if self.final_status or any(b.pending for b in self.branches):
            return
        if self.leg > self._failure_leg:
            self.all_branches_done()
        else:
            self.send_best_reply()

    def best_branch(self) -> Branch | None:
        candidates = [b for b in self.branches
                      if b.leg == self.leg and b.status >= 300 and b.reply is not None]
        if not candidates:
            return None
        return min(candidates, key=lambda b: reply_priority(b.status, b.faked))

    def send_best_reply(self) -> None:
        best = self.best_branch()
        if best is None:
            self.reply_local(500, "No destination available")
            return
        reply = best.reply
        assert reply is not None
        if self.canceled and (best.faked or best.status == 408):
            self.reply_local(487, "Request Terminated")
            return
        if best.faked:
            self.reply_local(best.status, reply.reason)
            return
        reply = reply.copy()
        if best.status in (401, 407):
            self._merge_challenges(best, reply)
        elif best.status == 503:
            reply.set_status(500, "Service Unavailable Downstream")
        self.relay_reply(best, reply)

    def _merge_challenges(self, best: Branch, reply: Response) -> None:
        """RFC 3261 §16.7 step 7: one 401/407 upstream carrying every branch's challenge."""
        for other in self.branches:
            if other is best or other.leg != self.leg or other.status not in (401, 407):
                continue
            if other.reply is None or other.faked:
                continue
            for name in ("WWW-Authenticate", "Proxy-Authenticate"):
                for value in other.reply.get_all(name):
                    reply.append_header(name, value)

    def cancel_branches(self, reason: str | None = None) -> None:
        for branch in self.branches:
            if branch.pending:
                branch.cancel(reason)

    # -- upstream -----------------------------------------------------------------------
    def relay_provisional(self, branch: Branch, reply: Response) -> None:
        if reply.status == 100 or self.final_status or self.uac_callback is not None:
            self.layer.stats_rpl_absorbed.value += 1
            return
        self._send_upstream(reply.bytes_without_top_via(), reply.status, relayed=True)

    def relay_reply(self, branch: Branch, reply: Response) -> None:
        """Forward a downstream final (or 2xx retransmission) upstream, our Via popped."""
        if self.uac_callback is not None:
            self._deliver_local(reply.status, reply)
            return
        self._send_upstream(reply.bytes_without_top_via(), reply.status, relayed=True)

    def reply_local(self, status: int, reason: str | None = None,
                    headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> bytes:
        """Answer the request ourselves (statefully); returns the bytes sent."""
        if self.uac_callback is not None:
            self._deliver_local(status, None)
            return b""
        tag = self.local_tag if status > 100 else None
        reply = make_response(self.request, status, reason, to_tag=tag, headers=headers,
                              body=body)
        data = reply.to_bytes()
        self.layer.stats_rpl_generated.value += 1
        self._send_upstream(data, status, relayed=False)
        if status >= 200:
            self.cancel_branches(reason=f"SIP;cause={status}")
        return data

    def _send_upstream(self, data: bytes, status: int, relayed: bool) -> None:
        layer = self.layer
        if status >= 200 and self.final_status and not (self.is_invite and 200 <= status < 300):
            layer.stats_rpl_absorbed.value += 1
            return
        layer.send(data, self.reply_dest, self.local, None)
        layer.stats_rpl_sent.value += 1
        if relayed:
            layer.stats_rpl_relayed.value += 1
            layer.stats_fwd_replies.value += 1
        if status < 200:
            self.last_reply, self.last_status = data, status
            return
        first_final = not self.final_status
        self.last_reply, self.last_status = data, status
        self.final_status = self.final_status or status
        if first_final:
            layer.transaction_completed(self, status)
            self._enter_final_state(status)
            self._shed()

    def _deliver_local(self, status: int, reply: Response | None) -> None:
        """Final outcome of a request we originated: hand it to its callback once."""
        if self.final_status:
            return
        self.final_status = status
        callback, self.uac_callback = self.uac_callback, None
        self.layer.transaction_completed(self, status)
        self._to("final of our own request")
        self._end_after(self.layer.params.wait_timer, "wait_timer")
        callback(status, reply)  # type: ignore[misc]
        self.uac_callback = callback
        self._shed()

    def _shed(self) -> None:
        """The final is sent: what is left to do is absorbing retransmissions (and relaying
        more 2xx), so keep only the header lines a local reply needs, and shed the final
        branches (pending ones shed when they end)."""
        if self._request is not None:  # else kept as bytes, smaller still
            self._request = self._request.reduced(_TXN_KEEPS)
        for branch in self.branches:
            if not branch.pending:
                branch.shed()

    def _enter_final_state(self, status: int) -> None:
        layer = self.layer
        if self._timeout_timer is not None:
            self._timeout_timer.cancel()
        if not self.is_invite:
            self._to("final to non-INVITE")
            self._end_after(layer.params.wait_timer, "wait_timer")
        elif status < 300:
            self._to("2xx to INVITE")
            self._end_after(layer.params.wait_timer, "wait_timer")
        else:
            self._to("final >=300 to INVITE")
            if not self.reply_dest.reliable:
                assert self.last_reply is not None
                self._retr = Retransmission(layer, self.last_reply, self.reply_dest, self.local)
            self._end_after(layer.params.timer_b, "timer_b")

    def _to(self, event: str) -> None:
        self.state = SERVER[self.state, event]

    def _end_after(self, seconds: float, event: str) -> None:
        """Arm the timer that ends the transaction by ``event`` (see the state table)."""
        self._end_event = event
        self._wait = self.layer.scheduler.call_later(seconds, self._end_timer_fired)

    def _end_timer_fired(self) -> None:
        self.terminate(self._end_event)

    def _stop_retransmissions(self) -> None:
        if self._retr is not None:
            self._retr.stop()
            self._retr = None

    # -- requests matching this transaction ------------------------------------------------
    def retransmission(self) -> None:
        """The same request again: replay the last reply (or absorb before any)."""
        if self.last_reply is not None:
            self.layer.send(self.last_reply, self.reply_dest, self.local, None)

    def ack(self) -> None:
        """Hop-by-hop ACK for our non-2xx final: stop retransmitting, linger, end."""
        if self.state is not COMPLETED or not self.is_invite:
            return
        self._to("ACK")
        self._stop_retransmissions()
        if self._wait is not None:
            self._wait.cancel()
        self._end_after(0.0 if self.reply_dest.reliable else self.layer.params.t4, "T4")

    def cancel(self) -> None:
        """A CANCEL matched this INVITE: cancel every pending branch; 487 follows."""
        if self.final_status:
            return
        self.canceled = True
        self.cancel_branches()
        if not self.branches and not self.in_failure:
            # Parked (async hook) with no branch yet: answer for it.
            self.reply_local(487, "Request Terminated")

    def arm_timeout(self, seconds: float) -> None:
        """Bound a parked transaction (async hook) that never relays nor replies."""
        self._timeout_timer = self.layer.scheduler.call_later(seconds, self._parked_timeout)

    def _parked_timeout(self) -> None:
        if not self.final_status and not self.branches:
            self.reply_local(500, "Routing did not finish in time")

    def terminate(self, event: str = "dropped by the script") -> None:
        """End the transaction by ``event``: a timer of the state table, or the pipeline dropping
        a request the script neither relayed nor answered."""
        if self.state is TERMINATED:
            return
        if any(b.pending for b in self.branches):
            # Cancelled branches still owe us their 487: keep matching their replies.
            self._end_after(self.layer.params.wait_timer, event)
            return
        self._to(event)
        self._stop_retransmissions()
        for timer in (self._wait, self._timeout_timer):
            if timer is not None:
                timer.cancel()
        # A timer's callback refers back to us: drop them to leave no reference cycle.
        self._wait = self._timeout_timer = None
        for branch in self.branches:
            if branch.state is not B_TERMINATED:
                branch.release()
        self.layer.forget_transaction(self)
        # Break the transaction <-> branch cycle so reference counting frees both at once:
        # the cyclic GC then has little to do (it cost a fifth of the CPU under load).
        self.branches = []
