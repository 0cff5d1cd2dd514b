"""The transaction layer driven by hand: fake clock, recorded sends, no sockets, no sleeps."""
from __future__ import annotations

from typing import Any

import pytest

from kamrouter.net import Endpoint
from kamrouter.sip import Request, Response, make_request, make_response, parse
from kamrouter.stats import StatsRegistry
from kamrouter.timers import Scheduler
from kamrouter.tm import Branch, TmParams, Transaction, TransactionLayer, reply_priority

UPSTREAM = Endpoint("udp", "192.0.2.1", 5060)
PROXY = Endpoint("udp", "192.0.2.10", 5060)
CALLEE_A = Endpoint("udp", "192.0.2.20", 5060)
CALLEE_B = Endpoint("udp", "192.0.2.21", 5060)


class Hooks:
    """Records what tm asks of the router core; failure routes are plain callables."""

    def __init__(self) -> None:
        self.replies: list[int] = []
        self.failures: list[Transaction] = []
        self.terminated: list[Transaction] = []

    def on_branch_reply(self, txn: Transaction, branch: Branch, reply: Response) -> bool:
        self.replies.append(reply.status)
        return True

    def on_branch_failed(self, txn: Transaction, branch: Branch) -> bool:
        return False

    def on_failure(self, txn: Transaction, handler: Any) -> None:
        self.failures.append(txn)
        handler(txn)
        txn.end_failure()

    def on_terminated(self, txn: Transaction) -> None:
        self.terminated.append(txn)


class World:
    def __init__(self, **params: Any) -> None:
        self.now = 0.0
        self.scheduler = Scheduler(lambda: self.now)
        self.sent: list[tuple[bytes, Endpoint]] = []
        self.hooks = Hooks()
        self.stats = StatsRegistry()
        self.tm = TransactionLayer(TmParams(**params), self.scheduler, self.send, self.hooks,
                                   self.stats)

    def send(self, data: bytes, dest: Endpoint, local: Endpoint | None, on_error: Any) -> None:
        self.sent.append((data, dest))

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every timer due on the way, in order."""
        end = self.now + seconds
        while (deadline := self.scheduler.next_deadline()) is not None and deadline <= end:
            self.now = deadline
            self.scheduler.fire_due(self.now)
        self.now = end

    def sent_to(self, dest: Endpoint) -> list[Request | Response]:
        return [parse(data) for data, where in self.sent if where == dest]

    def request(self, method: str = "INVITE") -> Request:
        req = make_request(method, "sip:bob@example.com", from_uri="sip:alice@example.com",
                           to_uri="sip:bob@example.com", via="SIP/2.0/UDP 192.0.2.1:5060")
        return parse(req.to_bytes())  # type: ignore[return-value]

    def relay(self, txn: Transaction, dest: Endpoint) -> Branch:
        req = txn.request.copy()
        branch = txn.add_branch(req, dest, PROXY, self.tm.branch_id(txn, len(txn.branches)))
        req.prepend_via(f"SIP/2.0/UDP 192.0.2.10:5060;branch={branch.branch_id}")
        branch.start(req.to_bytes())
        return branch

    def sent_on(self, branch: Branch) -> Request:
        """The request as the branch sent it (the branch itself forgets it once final)."""
        return next(m for m in self.sent_to(branch.dest)  # type: ignore[arg-type]
                    if isinstance(m, Request) and m.method == branch.txn.method
                    and m.via.branch == branch.branch_id)

    def reply(self, branch: Branch, status: int, tag: str = "callee") -> None:
        resp = make_response(self.sent_on(branch), status, to_tag=tag)
        assert self.tm.receive_reply(parse(resp.to_bytes()))  # type: ignore[arg-type]


def statuses(messages: list[Any]) -> list[int]:
    return [m.status for m in messages if not m.is_request]


def test_a_workers_labels_name_it_so_transaction_ids_are_unique_in_the_router() -> None:
    labels = []
    for index in range(3):
        w = World()
        w.tm = TransactionLayer(TmParams(), w.scheduler, w.send, w.hooks, w.stats,
                                worker=(index, 3))
        labels.append([w.tm.create(w.request(m), UPSTREAM, PROXY).tlabel
                       for m in ("OPTIONS", "INFO")])
    assert labels == [[3, 6], [4, 7], [5, 8]]
    one = World().tm  # one process: 1, 2, 3...
    assert one.create(World().request(), UPSTREAM, PROXY).tlabel == 1


def test_invite_relayed_with_100_trying_and_replies_forwarded_via_popped() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    w.reply(branch, 180)
    w.reply(branch, 200)
    upstream = w.sent_to(UPSTREAM)
    assert statuses(upstream) == [100, 180, 200]
    assert all(len(m.vias) == 1 for m in upstream)  # our Via is gone
    assert w.stats.get("tmx", "2xx_transactions").value == 1


def test_invite_retransmitted_on_udp_until_a_provisional_arrives() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    w.advance(0.5 + 1.0 + 2.0)  # timer A: T1, 2*T1, 4*T1
    assert len(w.sent_to(CALLEE_A)) == 4
    w.reply(branch, 180)
    w.advance(10)
    assert len(w.sent_to(CALLEE_A)) == 4


def test_non_invite_retransmissions_cap_at_t2_and_continue_after_provisional() -> None:
    w = World()
    txn = w.tm.create(w.request("OPTIONS"), UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    w.advance(0.5 + 1 + 2 + 4 + 4)  # T1 doubling capped at T2=4
    assert len(w.sent_to(CALLEE_A)) == 6
    w.reply(branch, 100)
    w.advance(8)
    assert len(w.sent_to(CALLEE_A)) == 8  # every T2 after a provisional


def test_no_answer_gives_local_408_after_fr_inv_timer() -> None:
    w = World(fr_inv_timer=3.0)
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    w.reply(branch, 180)
    w.advance(2.9)
    assert statuses(w.sent_to(UPSTREAM)) == [100, 180]
    w.advance(0.2)
    assert statuses(w.sent_to(UPSTREAM)) == [100, 180, 408]
    assert branch.timed_out
    # it rang, so it is told to stop ringing
    assert [m.method for m in w.sent_to(CALLEE_A) if m.is_request][-1] == "CANCEL"


def test_fr_timer_bounds_wait_for_first_reply() -> None:
    w = World(fr_timer=2.0)
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    w.relay(txn, CALLEE_A)
    w.advance(2.1)
    assert statuses(w.sent_to(UPSTREAM)) == [100, 408]


def test_negative_final_is_acked_downstream_and_retransmitted_upstream_until_ack() -> None:
    w = World()
    req = w.request()
    txn = w.tm.create(req, UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    w.reply(branch, 486)
    acks = [m for m in w.sent_to(CALLEE_A) if m.is_request and m.method == "ACK"]
    assert len(acks) == 1 and acks[0].via.branch == branch.branch_id
    assert acks[0].to_tag == "callee"
    w.advance(0.5 + 1.0)  # timer G
    assert statuses(w.sent_to(UPSTREAM)) == [100, 486, 486, 486]
    ack = parse(make_request("ACK", "sip:bob@example.com", from_uri="sip:a@example.com",
                             to_uri="sip:bob@example.com",
                             via=str(req.via)).to_bytes())
    found = w.tm.find(ack)  # type: ignore[arg-type]
    assert found is txn
    txn.ack()
    w.advance(10)
    assert statuses(w.sent_to(UPSTREAM)) == [100, 486, 486, 486]
    assert w.hooks.terminated == [txn]


def test_request_retransmission_replays_last_reply() -> None:
    w = World()
    req = w.request()
    txn = w.tm.create(req, UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    w.reply(branch, 180)
    again = w.tm.find(parse(req.to_bytes()))  # type: ignore[arg-type]
    assert again is txn
    txn.retransmission()
    assert statuses(w.sent_to(UPSTREAM)) == [100, 180, 180]


def test_serial_failover_from_failure_route() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    first = w.relay(txn, CALLEE_A)
    txn.failure_handler = lambda t: w.relay(t, CALLEE_B)
    w.reply(first, 486)
    assert w.hooks.failures == [txn]
    second = txn.branches[1]
    assert second.leg == 1 and second.dest == CALLEE_B
    w.reply(second, 200, tag="b")
    assert statuses(w.sent_to(UPSTREAM)) == [100, 200]


def test_failure_route_that_does_nothing_relays_best_reply() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    txn.failure_handler = lambda t: None
    w.reply(branch, 404)
    assert statuses(w.sent_to(UPSTREAM)) == [100, 404]


def test_parallel_fork_2xx_cancels_the_other_branch() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    a = w.relay(txn, CALLEE_A)
    b = w.relay(txn, CALLEE_B)
    w.reply(a, 180, tag="a")
    w.reply(b, 180, tag="b")
    w.reply(a, 200, tag="a")
    cancels = [m for m in w.sent_to(CALLEE_B) if m.is_request and m.method == "CANCEL"]
    assert len(cancels) == 1 and cancels[0].via.branch == b.branch_id
    assert "cause=200" in (cancels[0].get("Reason") or "")
    w.reply(b, 487, tag="b")
    assert statuses(w.sent_to(UPSTREAM)) == [100, 180, 180, 200]  # the 487 is absorbed


def test_cancel_waits_for_a_provisional_before_cancelling_a_branch() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    txn.cancel()
    assert not [m for m in w.sent_to(CALLEE_A) if m.method == "CANCEL"]
    w.reply(branch, 180)
    assert [m.method for m in w.sent_to(CALLEE_A) if m.is_request][-1] == "CANCEL"
    w.reply(branch, 487)
    assert statuses(w.sent_to(UPSTREAM)) == [100, 180, 487]


def test_canceled_branch_that_never_answers_ends_with_487_upstream() -> None:
    w = World(fr_timer=2.0)
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    w.relay(txn, CALLEE_A)
    txn.cancel()
    w.advance(2.1)
    assert statuses(w.sent_to(UPSTREAM)) == [100, 487]


def test_best_reply_prefers_6xx_and_6xx_cancels_other_branches() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    a = w.relay(txn, CALLEE_A)
    b = w.relay(txn, CALLEE_B)
    w.reply(b, 180, tag="b")
    w.reply(a, 603, tag="a")
    assert [m.method for m in w.sent_to(CALLEE_B) if m.is_request][-1] == "CANCEL"
    w.reply(b, 487, tag="b")
    assert statuses(w.sent_to(UPSTREAM))[-1] == 603


def test_challenges_of_all_branches_are_merged() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    a = w.relay(txn, CALLEE_A)
    b = w.relay(txn, CALLEE_B)
    for branch, realm in ((a, "a.example"), (b, "b.example")):
        resp = make_response(branch.request, 407, to_tag=realm,
                             headers=[("Proxy-Authenticate", f'Digest realm="{realm}", nonce="n"')])
        w.tm.receive_reply(parse(resp.to_bytes()))  # type: ignore[arg-type]
    final = w.sent_to(UPSTREAM)[-1]
    assert final.status == 407
    assert len(final.get_all("Proxy-Authenticate")) == 2


def test_503_is_sent_upstream_as_500() -> None:
    w = World()
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    w.reply(w.relay(txn, CALLEE_A), 503)
    assert statuses(w.sent_to(UPSTREAM))[-1] == 500


@pytest.mark.parametrize(("better", "worse"), [(603, 486), (486, 503), (401, 404), (302, 404),
                                               (404, 408)])
def test_reply_priority_order(better: int, worse: int) -> None:
    assert reply_priority(better) < reply_priority(worse)


def test_transactions_are_freed_after_the_wait_timer() -> None:
    w = World()
    txn = w.tm.create(w.request("OPTIONS"), UPSTREAM, PROXY)
    w.reply(w.relay(txn, CALLEE_A), 200)
    assert len(w.tm) == 1
    w.advance(5.1)
    assert len(w.tm) == 0
    assert w.stats.get("tmx", "inuse_transactions").value == 0


def test_a_finished_transaction_is_freed_before_its_cancelled_timers_expire() -> None:
    """Cancelled timers stay in the heap until their deadline (fr_timer: 30 s); they must
    not keep the transaction alive that long (memory at 1,000 calls/s)."""
    import gc

    def alive() -> int:
        return sum(isinstance(o, Transaction) for o in gc.get_objects())

    w = World()
    gc.collect()
    gc.disable()
    try:
        before = alive()
        w.scheduler.call_later(20.0, lambda: None)  # other calls' timers, due earlier
        txn = w.tm.create(w.request("OPTIONS"), UPSTREAM, PROXY)
        txn.arm_timeout(30.0)  # as a parked transaction (async routing) has
        w.reply(w.relay(txn, CALLEE_A), 200)
        del txn
        w.advance(5.1)  # the wait timer: ended, far from fr_timer's deadline
        w.hooks.terminated.clear()  # the test's own reference
        assert alive() == before
    finally:
        gc.enable()


def test_487_after_timeout_cancel_is_acknowledged() -> None:
    w = World(fr_inv_timer=1.0)
    txn = w.tm.create(w.request(), UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    w.reply(branch, 180)
    w.advance(1.1)
    w.reply(branch, 487)
    methods = [m.method for m in w.sent_to(CALLEE_A) if m.is_request]
    assert methods[-2:] == ["CANCEL", "ACK"]
    assert statuses(w.sent_to(UPSTREAM)) == [100, 180, 408]


def test_finished_transactions_leave_no_reference_cycles() -> None:
    """The router relaxes the cyclic GC (kamrouter.core.router.tune_garbage_collector): a
    transaction and its branches must be freed by reference counting alone."""
    import gc

    w = World()
    gc.collect()
    gc.disable()
    try:
        for status in (200, 486):
            txn = w.tm.create(w.request(), UPSTREAM, PROXY)
            w.reply(w.relay(txn, CALLEE_A), status)
        w.advance(64)
        del txn
        w.hooks.terminated.clear()  # the test's own references
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, (Transaction, Branch))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert len(w.tm) == 0 and leaked == []


def test_a_finished_transaction_keeps_only_what_absorbing_retransmissions_needs() -> None:
    w = World()
    req = w.request()
    txn = w.tm.create(req, UPSTREAM, PROXY)
    branch = w.relay(txn, CALLEE_A)
    (sent,) = [data for data, where in w.sent if where == CALLEE_A]
    assert branch._request is None and branch._sent is sent, "the bytes sent, not a copy"
    w.reply(branch, 486)
    assert sorted(txn.request._names) == ["call-id", "cseq", "from", "to", "via"]
    assert branch.reply is None and branch._request is None and branch._sent == b""
    # ... which still answers a retransmitted INVITE and a late 486 (ACKed again).
    txn.retransmission()
    w.reply(branch, 486)
    assert statuses(w.sent_to(UPSTREAM)) == [100, 486, 486]
    acks = [m for m in w.sent_to(CALLEE_A) if m.is_request and m.method == "ACK"]
    assert len(acks) == 2 and acks[0].to_bytes() == acks[1].to_bytes()
