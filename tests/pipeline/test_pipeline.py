"""The proxy pipeline driven in one process (tests/support/pipeline.py): requests in, recorded
sends out, a fake clock; exact wire assertions, no sockets and no sleeps."""
from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from kamrouter.net import Endpoint
from kamrouter.sip import Request, Response
from support.pipeline import PROXY, Names, Pipeline

CALLER = Endpoint("udp", "127.0.0.2", 5070)
CALLEE = Endpoint("udp", "127.0.0.3", 5080)

RELAY = """
def request_route(msg):
    if not maxfwd.process(msg, 10):
        sl.send_reply(msg, 483, "Too Many Hops")
        return
    if rr.loose_route(msg):
        tm.relay(msg)
        return
    rr.record_route(msg)
    tm.relay(msg)
"""


def request(method: str = "INVITE", ruri: str = "sip:bob@127.0.0.3:5080", *,
            routes: tuple[str, ...] = (), branch: str = "z9hG4bK-c1", max_forwards: int = 70,
            call_id: str = "call-1@test", cseq: int = 1, to_tag: str = "") -> str:
    route_lines = "".join(f"Route: {route}\n" for route in routes)
    to_params = f";tag={to_tag}" if to_tag else ""
    return (f"{method} {ruri} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.2:5070;branch={branch}\n"
            f"{route_lines}"
            f"From: <sip:alice@127.0.0.2:5070>;tag=a1\n"
            f"To: <sip:bob@127.0.0.3:5080>{to_params}\n"
            f"Call-ID: {call_id}\nCSeq: {cseq} {method}\nMax-Forwards: {max_forwards}\n"
            f"Contact: <sip:alice@127.0.0.2:5070>\nContent-Length: 0\n\n")


def answer(forwarded: Request, status: int) -> bytes:
    """The callee's reply to what the proxy sent it."""
    from kamrouter.sip import make_response
    return make_response(forwarded, status, to_tag="b1").to_bytes()


def only(sent: list, dest: Endpoint) -> list:
    return [msg for msg, where in sent if where == dest]


# -- stateful relay, loose and strict routing -------------------------------------------------

def test_an_invite_is_relayed_with_our_via_record_route_and_max_forwards_minus_one(
        tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    pipe.receive(request(), CALLER)
    sent = pipe.take()
    (trying,) = only(sent, CALLER)
    (invite,) = only(sent, CALLEE)
    assert isinstance(trying, Response) and trying.status == 100
    assert isinstance(invite, Request) and invite.ruri == "sip:bob@127.0.0.3:5080"
    assert invite.via.host == "127.0.0.1" and invite.via.port == 5060
    assert invite.vias[1].branch == "z9hG4bK-c1"
    assert invite.max_forwards == 9  # capped at maxfwd.process's limit, then minus one
    assert invite.get_all("Record-Route") == ["<sip:127.0.0.1:5060;lr>"]
    # The callee answers: the 200 goes upstream without our Via.
    pipe.receive(answer(invite, 200), CALLEE)
    (ok,) = only(pipe.take(), CALLER)
    assert ok.status == 200 and ok.via.branch == "z9hG4bK-c1" and len(ok.vias) == 1


def test_loose_routing_consumes_our_route_and_follows_the_next(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    pipe.receive(request("BYE", "sip:bob@127.0.0.9:5099", to_tag="b1",
                         routes=("<sip:127.0.0.1:5060;lr>", "<sip:127.0.0.3:5080;lr>")), CALLER)
    (bye, dest), = pipe.take()
    assert dest == CALLEE
    assert bye.ruri == "sip:bob@127.0.0.9:5099"  # loose routing keeps the Request-URI
    assert bye.get_all("Route") == ["<sip:127.0.0.3:5080;lr>"]


def test_a_strict_next_hop_gets_the_route_as_request_uri(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    pipe.receive(request("BYE", "sip:bob@127.0.0.9:5099", to_tag="b1",
                         routes=("<sip:127.0.0.1:5060;lr>", "<sip:127.0.0.3:5080>")), CALLER)
    (bye, dest), = pipe.take()
    assert dest == CALLEE
    assert bye.ruri == "sip:127.0.0.3:5080"
    assert bye.get_all("Route") == ["<sip:bob@127.0.0.9:5099>"]  # the old R-URI goes last


def test_after_a_strict_previous_hop_the_last_route_is_the_request_uri(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    pipe.receive(request("BYE", "sip:127.0.0.1:5060;lr", to_tag="b1",
                         routes=("<sip:127.0.0.3:5080;lr>", "<sip:bob@127.0.0.9:5099>")), CALLER)
    (bye, dest), = pipe.take()
    assert dest == CALLEE
    assert bye.ruri == "sip:bob@127.0.0.9:5099"
    assert bye.get_all("Route") == ["<sip:127.0.0.3:5080;lr>"]


# -- stateless replies -------------------------------------------------------------------------

def test_a_stateless_reply_keeps_its_to_tag_for_retransmissions(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, 'def request_route(msg):\n    sl.send_reply(msg, 404, "Nobody")\n')
    pipe.receive(request(), CALLER)
    pipe.receive(request(), CALLER)
    first, again = pipe.take()
    assert first[1] == again[1] == CALLER
    assert (first[0].status, first[0].reason) == (404, "Nobody")
    assert first[0].to_tag and first[0].to_tag == again[0].to_tag
    assert pipe.stat("sl:4xx_replies") == 2


def test_max_forwards_zero_is_answered_483_and_not_relayed(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    pipe.receive(request(max_forwards=0), CALLER)
    (reply, dest), = pipe.take()
    assert dest == CALLER and reply.status == 483


def test_a_request_that_comes_back_in_a_circle_gets_482(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    pipe.receive(request(), CALLER)
    (relayed,) = only(pipe.take(), CALLEE)
    pipe.receive(relayed.to_bytes(), CALLEE)  # the next hop sent it back to us unchanged
    (reply, dest), = pipe.take()
    # To the source address, at the port of its top Via (ours: 5060; no rport, RFC 3261 §18.2.2)
    assert reply.status == 482 and dest == Endpoint("udp", CALLEE.host, 5060)


def test_nothing_is_sent_to_the_pipeline_s_own_socket(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    pipe.receive(request(ruri="sip:bob@127.0.0.1:5060"), CALLER)
    assert [(m.status, dest) for m, dest in pipe.take()] == [(100, CALLER), (482, CALLER)]
    assert pipe.wire.refused == [PROXY]


def test_a_reply_without_transaction_goes_to_the_next_via(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    reply = ("SIP/2.0 200 OK\n"
             "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsl-gone\n"
             "Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-c1;received=127.0.0.7\n"
             "From: <sip:alice@127.0.0.2>;tag=a1\nTo: <sip:bob@127.0.0.3>;tag=b1\n"
             "Call-ID: call-1@test\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
    pipe.receive(reply, CALLEE)
    (ok, dest), = pipe.take()
    assert dest == Endpoint("udp", "127.0.0.7", 5070) and len(ok.vias) == 1


# -- branch routes -------------------------------------------------------------------------------

BRANCHES = """
def request_route(msg):
    tm.append_branch(msg, "sip:carol@127.0.0.4:5090")
    tm.append_branch(msg, "sip:dave@127.0.0.5:5090")
    tm.on_branch(msg, "per_branch")
    tm.relay(msg)

def per_branch(msg):
    if msg.ruri.startswith("sip:dave"):
        return False                       # this branch is dropped
    if msg.ruri.startswith("sip:carol"):
        msg.dst_uri = "sip:127.0.0.6:5091"  # this one goes through another hop
        msg.append_header("X-Branch", str(msg.branch_index))
"""


def test_a_branch_route_edits_or_drops_each_branch(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, BRANCHES)
    pipe.receive(request(), CALLER)
    sent = {dest: msg for msg, dest in pipe.take() if isinstance(msg, Request)}
    assert set(sent) == {CALLEE, Endpoint("udp", "127.0.0.6", 5091)}
    carol = sent[Endpoint("udp", "127.0.0.6", 5091)]
    assert carol.ruri == "sip:carol@127.0.0.4:5090" and carol.get("X-Branch") == "1"
    assert sent[CALLEE].get("X-Branch") is None
    assert sent[CALLEE].via.branch != carol.via.branch


def test_a_branch_to_a_name_that_does_not_resolve_fails_with_478(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, "def request_route(msg):\n    tm.relay(msg)\n")
    pipe.receive(request(ruri="sip:bob@nowhere.invalid"), CALLER)
    statuses = [msg.status for msg, dest in pipe.take() if dest == CALLER]
    assert statuses == [100, 478]


def test_an_unanswered_branch_times_out_into_the_failure_route(tmp_path: Path) -> None:
    script = ("def request_route(msg):\n    tm.on_failure(msg, 'again')\n    tm.relay(msg)\n\n"
              "def again(msg):\n"
              "    msg.ruri = 'sip:bob@127.0.0.4:5090'\n    tm.relay(msg)\n")
    pipe = Pipeline(tmp_path, script, fr_timer=2.0)
    pipe.receive(request(), CALLER)
    assert len(only(pipe.take(), CALLEE)) == 1
    pipe.advance(1.9)
    assert only(pipe.take(), CALLEE), "the INVITE is retransmitted (T1 doubling) meanwhile"
    pipe.advance(0.2)  # fr_timer fires: a local 408, the failure route relays again
    (second,) = only(pipe.take(), Endpoint("udp", "127.0.0.4", 5090))
    assert second.ruri == "sip:bob@127.0.0.4:5090"
    pipe.receive(answer(second, 486), Endpoint("udp", "127.0.0.4", 5090))
    assert [m.status for m in only(pipe.take(), CALLER)] == [486]


def test_a_failure_route_sees_the_whole_request_kept_as_bytes_meanwhile(tmp_path: Path) -> None:
    script = ("def request_route(msg):\n"
              "    msg.append_header('X-Edited', 'in request_route')\n"
              "    msg.vars['tried'] = 1\n    msg.flags.add(3)\n"
              "    tm.on_failure(msg, 'again')\n    tm.relay(msg)\n\n"
              "def again(msg):\n"
              "    assert msg.vars == {'tried': 1} and msg.flags == {3}\n"
              "    msg.ruri = 'sip:bob@127.0.0.4:5090'\n    tm.relay(msg)\n")
    pipe = Pipeline(tmp_path, script, fr_timer=2.0)
    body = "v=0\r\ns=-\r\n"
    folded = request().replace("Contact: <sip:alice@127.0.0.2:5070>\n",
                               "Subject: a folded\n  line\nm: <sip:alice@127.0.0.2:5070>\n")
    pipe.receive(folded.replace("Content-Length: 0\n\n", f"Content-Type: application/sdp\n"
                                                         f"Content-Length: {len(body)}\n\n{body}"),
                 CALLER)
    (first,) = only(pipe.take(), CALLEE)
    (txn,) = pipe.proxy.tm._by_id.values()
    assert txn._request is None, "routed: the transaction keeps the request as its bytes"
    pipe.advance(2.1)  # fr_timer: a local 408 into the failure route
    (second,) = only(pipe.take(), Endpoint("udp", "127.0.0.4", 5090))
    assert second.ruri == "sip:bob@127.0.0.4:5090"
    assert second.body == first.body == body.encode()
    assert second.get("Subject") == "a folded line" and second.get("X-Edited") == "in request_route"
    assert second.max_forwards == first.max_forwards == 69
    assert [v.branch for v in second.vias][1:] == [v.branch for v in first.vias][1:]
    assert [n for n in second._names if n != "record-route"] == \
        [n for n in first._names if n != "record-route"]


GATEWAYS = [Endpoint("udp", "127.0.0.4", 5090), Endpoint("udp", "127.0.0.5", 5090),
            Endpoint("udp", "127.0.0.6", 5090)]


def failover_run(tmp_path: Path, failover_max: int) -> list[Endpoint]:
    """Which of three SRV-like targets of one name an unanswered INVITE reaches, in order,
    and that the caller gets one final answer."""
    pipe = Pipeline(tmp_path, "def request_route(msg):\n    tm.relay(msg)\n", fr_timer=2.0,
                    targets={"gw.test": GATEWAYS}, failover_max=failover_max)
    pipe.receive(request(ruri="sip:bob@gw.test"), CALLER)
    reached: list[Endpoint] = []
    answers: list[int] = []
    for _ in GATEWAYS:
        sent = pipe.take()
        reached += [dest for msg, dest in sent
                    if isinstance(msg, Request) and dest in GATEWAYS and dest not in reached]
        answers += [msg.status for msg, dest in sent if dest == CALLER]
        pipe.advance(2.1)  # fr_timer: this target is dead
    answers += [msg.status for msg, dest in pipe.take() if dest == CALLER]
    assert answers[0] == 100 and set(answers[1:]) == {408}, "one final (and its retransmissions)"
    assert [dest for dest, _ in pipe.blocked.added] == reached, "every dead target blocklisted"
    return reached


def test_dns_failover_tries_the_next_targets_up_to_failover_max(tmp_path: Path) -> None:
    assert failover_run(tmp_path, failover_max=4) == GATEWAYS
    assert failover_run(tmp_path, failover_max=1) == GATEWAYS[:2]
    assert failover_run(tmp_path, failover_max=0) == GATEWAYS[:1]


# -- parked requests (async hooks) ----------------------------------------------------------------

PARKED = """
import trio
release = trio.Event()

def request_route(msg):
    if msg.method == "INVITE":
        return ask(msg)
    tm.relay(msg)

async def ask(msg):
    await release.wait()
    msg.ruri = "sip:bob@127.0.0.4:5090"
    tm.relay(msg)
"""


async def test_a_parked_invite_absorbs_retransmissions_then_relays(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    pipe = Pipeline(tmp_path, PARKED, spawn=nursery.start_soon)
    pipe.receive(request(), CALLER)
    await trio.testing.wait_all_tasks_blocked()
    assert [m.status for m, _ in pipe.take()] == [100]
    pipe.receive(request(), CALLER)  # retransmission while parked: the 100 again
    assert [m.status for m, _ in pipe.take()] == [100]
    pipe.script.module.release.set()
    await trio.testing.wait_all_tasks_blocked()
    (invite, dest), = pipe.take()
    assert dest == Endpoint("udp", "127.0.0.4", 5090) and invite.method == "INVITE"
    (txn,) = pipe.proxy.tm._by_id.values()
    assert txn._request is None, "routed: kept as its bytes, as after a plain request_route"
    pipe.receive(request(), CALLER)  # a retransmission still gets the last reply
    assert [m.status for m, _ in pipe.take()] == [100]


async def test_a_call_s_requests_wait_for_its_parked_one(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    pipe = Pipeline(tmp_path, PARKED, spawn=nursery.start_soon)
    pipe.receive(request(), CALLER)
    pipe.receive(request("INFO", branch="z9hG4bK-c2", cseq=2), CALLER)  # same call
    pipe.receive(request("INFO", branch="z9hG4bK-o1", call_id="other@test"), CALLER)
    await trio.testing.wait_all_tasks_blocked()
    relayed = [m.call_id for m, _ in pipe.take() if isinstance(m, Request)]
    assert relayed == ["other@test"], "another call is not held up"
    pipe.script.module.release.set()
    await trio.testing.wait_all_tasks_blocked()
    assert [m.method for m, _ in pipe.take() if isinstance(m, Request)] == ["INVITE", "INFO"]


async def test_a_cancel_answers_a_parked_invite_with_487(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    pipe = Pipeline(tmp_path, PARKED, spawn=nursery.start_soon)
    pipe.receive(request(), CALLER)
    await trio.testing.wait_all_tasks_blocked()
    pipe.take()
    pipe.receive(request("CANCEL"), CALLER)
    assert sorted(m.status for m, _ in pipe.take()) == [200, 487]


async def test_a_parked_request_that_never_finishes_gets_500_after_fr_timer(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    pipe = Pipeline(tmp_path, PARKED, spawn=nursery.start_soon, fr_timer=3.0)
    pipe.receive(request(), CALLER)
    await trio.testing.wait_all_tasks_blocked()
    pipe.take()
    pipe.advance(3.0)
    (reply, _), = pipe.take()
    assert (reply.status, reply.reason) == (500, "Routing did not finish in time")


async def test_a_next_hop_that_needs_dns_is_sent_after_the_lookup(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    names = Names({"callee.test": "127.0.0.3"}, slow={"callee.test"})
    pipe = Pipeline(tmp_path, "def request_route(msg):\n    tm.relay(msg)\n",
                    spawn=nursery.start_soon, names=names)
    pipe.receive(request(ruri="sip:bob@callee.test:5080"), CALLER)
    assert [m.status for m, _ in pipe.take()] == [100]
    await trio.testing.wait_all_tasks_blocked()
    (invite, dest), = pipe.take()
    assert dest == CALLEE and invite.ruri == "sip:bob@callee.test:5080"
