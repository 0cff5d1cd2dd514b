"""The transaction layer: matching, creation, stats (sans-IO).

The I/O side hands it requests and replies with :meth:`TransactionLayer.match_request` /
:meth:`receive_reply`; it sends bytes through the ``send`` callable given at construction and
arms timers in the router's single :class:`~kamrouter.timers.Scheduler`. Routing decisions go
to ``hooks`` (:class:`TmHooks`), implemented by the proxy pipeline
(:class:`kamrouter.pipeline.proxy.Proxy`).
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Protocol

from kamrouter.net import Endpoint
from kamrouter.sip import MAGIC_COOKIE, Request, Response

__all__ = ["MAGIC_COOKIE", "SendFn", "TmHooks", "TransactionLayer"]
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler
from kamrouter.tm.params import TmParams
from kamrouter.tm.transaction import Branch, Transaction

#: ``send(data, destination, local_socket, on_error)``: never blocks; ``on_error`` is called
#: later if the transport finds the destination unreachable (e.g. TCP connect refused).
SendFn = Callable[[bytes, Endpoint, Endpoint | None, Callable[[], None] | None], None]


class TmHooks(Protocol):
    def on_branch_reply(self, txn: Transaction, branch: Branch, reply: Response) -> bool:
        """Run reply routes for a reply to ``branch``; False drops the reply."""

    def on_branch_failed(self, txn: Transaction, branch: Branch) -> bool:
        """``branch`` ended with a final >= 300 (maybe local): True when the core started a
        replacement branch for it (DNS failover), so no verdict is due yet."""

    def on_failure(self, txn: Transaction, handler: Any) -> None:
        """Run failure route ``handler``; must end with ``txn.end_failure()`` (maybe later)."""

    def on_terminated(self, txn: Transaction) -> None:
        """The transaction is gone (for modules that track per-call state)."""


class TransactionLayer:
    """All live transactions of one router process."""

    def __init__(self, params: TmParams, scheduler: Scheduler, send: SendFn, hooks: TmHooks,
                 stats: StatsRegistry, mark: str = "", worker: tuple[int, int] = (0, 1)
                 ) -> None:
        """``mark``: what every branch id starts with after the magic cookie (a worker
        process's index, so that replies can be handed to it); ``worker``: (index, count)
        of a worker process, whose labels are ``index`` modulo ``count`` (a transaction id,
        ``tindex:tlabel``, is then unique in the router, e.g. for evapi's answers)."""
        self.params = params
        self.scheduler = scheduler
        self.send = send
        self.hooks = hooks
        self._server: dict[tuple[object, ...], Transaction] = {}
        self._branches: dict[str, Branch] = {}
        #: By label, unique in the process (a key tuple per transaction cost 112 bytes).
        self._by_id: dict[int, Transaction] = {}
        self._label, self._label_step = worker
        #: Per-process salt so branch ids never repeat across restarts.
        self._salt = secrets.token_hex(4)
        self._prefix = f"{MAGIC_COOKIE}{mark}{self._salt}"
        self.active = 0
        counter = stats.counter
        self.stats_uas = counter("tmx", "UAS_transactions")
        self.stats_uac = counter("tmx", "UAC_transactions")
        self.stats_class = {c: counter("tmx", f"{c}xx_transactions") for c in range(2, 7)}
        self.stats_rpl_received = counter("tmx", "rpl_received")
        self.stats_rpl_absorbed = counter("tmx", "rpl_absorbed")
        self.stats_rpl_relayed = counter("tmx", "rpl_relayed")
        self.stats_fwd_replies = counter("core", "fwd_replies")
        self.stats_rpl_generated = counter("tmx", "rpl_generated")
        self.stats_rpl_sent = counter("tmx", "rpl_sent")
        stats.gauge("tmx", "inuse_transactions", lambda: len(self._by_id), per_process=True)
        stats.gauge("tmx", "active_transactions", lambda: self.active, per_process=True)

    # -- matching ----------------------------------------------------------------------
    @staticmethod
    def server_key(request: Request) -> tuple[object, ...]:
        """RFC 3261 §17.2.3 key; RFC 2543 fallback when the branch lacks the cookie."""
        via = request.via
        method = request.method
        kind = "INVITE" if method == "ACK" else method
        branch = via.branch
        if via.is_rfc3261:
            return (branch, via.host, via.port, kind)
        # The top Via by what its sender wrote (sent-by, branch): the proxy stamps
        # received/rport into it before the transaction exists, retransmissions come without.
        return ("2543", request.call_id, request.cseq.number, request.from_tag,
                request.ruri, via.host, via.port, branch, kind)

    def find(self, request: Request) -> Transaction | None:
        """The transaction this request belongs to (ACK finds its INVITE)."""
        return self._server.get(self.server_key(request))

    def find_invite(self, cancel: Request) -> Transaction | None:
        """The INVITE transaction a CANCEL refers to (same branch/sent-by)."""
        key = self.server_key(cancel)
        return self._server.get(key[:-1] + ("INVITE",))

    def lookup(self, tindex: int, tlabel: int) -> Transaction | None:
        txn = self._by_id.get(tlabel)
        return txn if txn is not None and txn.tindex == tindex else None

    def __len__(self) -> int:
        return len(self._by_id)

    # -- creation ----------------------------------------------------------------------
    def create(self, request: Request, source: Endpoint, local: Endpoint | None) -> Transaction:
        """A new server transaction (sends 100 Trying for INVITE when configured)."""
        txn = self._new(request, source, local, self.server_key(request),
                        self.reply_destination(request, source))
        self._server[txn.key] = txn
        self.stats_uas.value += 1
        if txn.is_invite and self.params.auto_100:
            txn.reply_local(100, self.params.auto_100_reason)
        return txn

    def create_uac(self, request: Request, callback: Callable[[int, Response | None], None]
                   ) -> Transaction:
        """A transaction for a request this router originates; ``callback`` gets the final."""
        txn = self._new(request, Endpoint("udp", "0.0.0.0", 0), None, ("uac", id(request)),
                        Endpoint("udp", "0.0.0.0", 0))
        txn.uac_callback = callback
        self.stats_uac.value += 1
        return txn

    def _new(self, request: Request, source: Endpoint, local: Endpoint | None,
             key: tuple[object, ...],
             reply_dest: Endpoint) -> Transaction:
        self._label += self._label_step
        tindex = hash(request.call_id) & 0xFFFF
        txn = Transaction(self, request, source, local, reply_dest, key, tindex, self._label)
        self._by_id[self._label] = txn
        self.active += 1
        return txn

    @staticmethod
    def reply_destination(request: Request, source: Endpoint) -> Endpoint:
        """RFC 3261 §18.2.2 / RFC 3581: the source address; its port with rport or streams."""
        if source.reliable:
            return source
        via = request.via
        port = via.port or 5060
        if via.has_rport or port == source.port:
            return source  # not a copy of it: the transaction keeps one endpoint, not two
        return Endpoint(source.proto, source.host, port)

    @property
    def branch_prefix(self) -> str:
        """How every branch id this process generates starts (loop detection looks for it)."""
        return self._prefix

    def branch_id(self, txn: Transaction, index: int, loop_tag: str = "") -> str:
        """``z9hG4bK<mark><salt><loop tag>.<label>.<index>``: unique, and carrying the
        request's loop-detection hash (RFC 3261 §16.6 step 8)."""
        return f"{self._prefix}{loop_tag}.{txn.tlabel:x}.{index}"

    def register_branch(self, branch: Branch) -> None:
        self._branches[branch.branch_id] = branch

    def forget_branch(self, branch: Branch) -> None:
        if self._branches.get(branch.branch_id) is branch:
            del self._branches[branch.branch_id]

    def transaction_completed(self, txn: Transaction, status: int) -> None:
        self.active -= 1
        counter = self.stats_class.get(status // 100)
        if counter is not None:
            counter.value += 1

    def forget_transaction(self, txn: Transaction) -> None:
        if self._server.get(txn.key) is txn:
            del self._server[txn.key]
        self._by_id.pop(txn.tlabel, None)
        if not txn.final_status:
            self.active -= 1
        self.hooks.on_terminated(txn)

    # -- replies -----------------------------------------------------------------------
    def receive_reply(self, reply: Response) -> bool:
        """Feed a reply; False when it matches no branch (the caller forwards it statelessly)."""
        branch = self._branches.get(reply.via.branch or "")
        if branch is None:
            return False
        self.stats_rpl_received.value += 1
        method = reply.cseq.method
        if method == "CANCEL":
            branch.cancel_replied()
        elif method == branch.txn.method:
            branch.receive(reply)
        else:
            self.stats_rpl_absorbed.value += 1
        return True
