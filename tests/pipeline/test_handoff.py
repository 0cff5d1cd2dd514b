"""A worker process's hand-off decisions (kamrouter/pipeline/handoff.py), with a recorded
hand-off instead of the Unix socket: what belongs to another worker goes there raw, with
its source and listener; what was passed on once is never passed on again; forged marks
are dropped and counted."""
from __future__ import annotations

from pathlib import Path

from kamrouter.net import Endpoint
from kamrouter.sip import Request, make_response
from kamrouter.stats import StatsRegistry
from support.pipeline import PROXY, Pipeline

from .test_pipeline import CALLEE, CALLER, RELAY, only, request

TCP = Endpoint("tcp", PROXY.host, 5060)
TCP_CALLEE = Endpoint("tcp", "127.0.0.3", 5080)


class RecordedHandoff:
    """The transport's end of the hand-off, recording what is passed on."""

    def __init__(self, index: int, count: int, stats: StatsRegistry) -> None:
        self.index, self.count = index, count
        self.dropped = stats.counter("core", "handoff_dropped")
        self.passed: list[tuple[int, int, bytes, Endpoint, Endpoint]] = []

    def send(self, target: int, origin: int, data: bytes, source: Endpoint,
             local: Endpoint) -> None:
        self.passed.append((target, origin, data, source, local))


def worker(tmp_path: Path, index: int, count: int = 2,
           sockets: tuple[Endpoint, ...] = (PROXY,)) -> tuple[Pipeline, RecordedHandoff]:
    tmp_path.mkdir(exist_ok=True)
    stats = StatsRegistry()
    handoff = RecordedHandoff(index, count, stats)
    pipe = Pipeline(tmp_path, RELAY, handoff=handoff, sockets=sockets)
    handoff.dropped = pipe.stats.counter("core", "handoff_dropped")
    return pipe, handoff


def forwarded_invite(pipe: Pipeline) -> Request:
    pipe.receive(request(), CALLER)
    (invite,) = only(pipe.take(), CALLEE)
    assert isinstance(invite, Request)
    return invite


def test_the_listener_forwards_and_the_branch_names_the_worker(tmp_path: Path) -> None:
    pipe, handoff = worker(tmp_path, 1)
    invite = forwarded_invite(pipe)
    assert (invite.via.host, invite.via.port) == (PROXY.host, PROXY.port)
    assert (invite.via.branch or "").startswith("z9hG4bKw1-")
    # An all-UDP dialog: any worker may take its in-dialog requests, no mark.
    assert invite.get_all("Record-Route") == [f"<sip:{PROXY.host}:{PROXY.port};lr>"]
    pipe.receive(make_response(invite, 180, to_tag="b1").to_bytes(), CALLEE)
    assert [m.status for m in only(pipe.take(), CALLER)] == [180]
    assert handoff.passed == []


def test_a_reply_for_another_worker_is_passed_on_raw(tmp_path: Path) -> None:
    first, _ = worker(tmp_path / "0", 0)
    invite = forwarded_invite(first)
    second, handoff = worker(tmp_path / "1", 1)  # the script's APIs are the last pipeline's
    ringing = make_response(invite, 180, to_tag="b1").to_bytes()
    second.receive(ringing, CALLEE)
    assert second.take() == []
    assert handoff.passed == [(0, 1, ringing, CALLEE, PROXY)]
    # Passed on by worker 1, the reply is worker 0's own: relayed.
    first.receive(ringing, CALLEE, origin=1)
    assert [m.status for m in only(first.take(), CALLER)] == [180]


def test_a_handed_off_reply_is_never_passed_on_again_and_forged_marks_are_dropped(
        tmp_path: Path) -> None:
    first, _ = worker(tmp_path / "0", 0)
    invite = forwarded_invite(first)
    second, handoff = worker(tmp_path / "1", 1)  # the script's APIs are the last pipeline's
    ringing = make_response(invite, 180, to_tag="b1").to_bytes()
    second.receive(ringing, CALLEE, origin=0)  # names worker 0, which passed it on: a loop
    forged = ringing.replace(b"z9hG4bKw0-", b"z9hG4bKw7-")
    second.receive(forged, CALLEE)  # no worker 7
    assert second.take() == [] and handoff.passed == []
    assert second.stat("core:handoff_dropped") == 2


def test_a_cancel_without_its_invite_goes_round_the_workers(tmp_path: Path) -> None:
    pipe, handoff = worker(tmp_path / "0", 0, count=3)
    cancel = request("CANCEL")
    pipe.receive(cancel, CALLER)
    ((target, origin, data, source, local),) = handoff.passed
    assert (target, origin, source, local) == (1, 0, CALLER, PROXY)
    assert data.startswith(b"CANCEL ")
    middle, handoff = worker(tmp_path / "1", 1, count=3)
    middle.receive(cancel, CALLER, origin=0)
    assert [p[:2] for p in handoff.passed] == [(2, 0)]
    last, handoff = worker(tmp_path / "2", 2, count=3)
    last.receive(cancel, CALLER, origin=0)  # the last of the round: its script decides
    assert handoff.passed == []
    assert [m.method for m in only(last.take(), CALLEE) if isinstance(m, Request)] == [
        "CANCEL"]


def test_a_cancel_or_failure_ack_of_its_own_invite_stays(tmp_path: Path) -> None:
    pipe, handoff = worker(tmp_path, 0)
    invite = forwarded_invite(pipe)
    pipe.receive(request("CANCEL"), CALLER)
    sent = pipe.take()
    assert [m.status for m in only(sent, CALLER)] == [200]
    pipe.receive(make_response(invite, 487, to_tag="b1").to_bytes(), CALLEE)
    assert [m.status for m in only(pipe.take(), CALLER)] == [487]
    pipe.receive(request("ACK", to_tag="b1"), CALLER)
    assert handoff.passed == []


def test_an_ack_with_our_route_is_a_2xx_ack_any_worker_forwards(tmp_path: Path) -> None:
    pipe, handoff = worker(tmp_path, 0)
    pipe.receive(request("ACK", to_tag="b1", routes=(f"<sip:{PROXY.host}:{PROXY.port};lr>",)),
                 CALLER)
    assert handoff.passed == []
    pipe.receive(request("ACK", to_tag="b1"), CALLER)  # a failure's ACK, INVITE elsewhere
    assert [p[:2] for p in handoff.passed] == [(1, 0)]


def test_a_dialog_with_a_connection_stays_with_the_worker_holding_it(tmp_path: Path) -> None:
    pipe, _ = worker(tmp_path / "0", 0, sockets=(PROXY, TCP))
    pipe.receive(request(ruri="sip:bob@127.0.0.3:5080;transport=tcp"), CALLER)
    (invite,) = only(pipe.take(), TCP_CALLEE)
    routes = invite.get_all("Record-Route")
    assert routes == [f"<sip:{PROXY.host}:{PROXY.port};transport=tcp;lr;r2=on;kw=0>",
                      f"<sip:{PROXY.host}:{PROXY.port};lr;r2=on;kw=0>"]
    # The caller's BYE over UDP reaches worker 1: it goes to worker 0.
    other, handoff = worker(tmp_path / "1", 1, sockets=(PROXY, TCP))
    bye = request("BYE", "sip:bob@127.0.0.3:5080;transport=tcp", to_tag="b1", cseq=2,
                  routes=(routes[1], routes[0]))
    other.receive(bye, CALLER)
    assert [p[:2] for p in handoff.passed] == [(0, 1)] and other.take() == []


def test_a_reply_over_a_connection_goes_to_the_worker_of_its_branch(tmp_path: Path) -> None:
    """Worker 0 sent the INVITE out on worker 1's connection (a send hand-off): the reply
    comes on that connection to worker 1, which passes it on with its TCP source."""
    first, _ = worker(tmp_path / "0", 0, sockets=(PROXY, TCP))
    first.receive(request(ruri="sip:bob@127.0.0.3:5080;transport=tcp"), CALLER)
    (invite,) = only(first.take(), TCP_CALLEE)
    assert isinstance(invite, Request)
    second, handoff = worker(tmp_path / "1", 1, sockets=(PROXY, TCP))
    ringing = make_response(invite, 180, to_tag="b1").to_bytes()
    second.receive(ringing, TCP_CALLEE, TCP)
    assert second.take() == [] and handoff.passed == [(0, 1, ringing, TCP_CALLEE, TCP)]
    first.receive(ringing, TCP_CALLEE, TCP, origin=1)
    assert [m.status for m in only(first.take(), CALLER)] == [180]


def test_a_request_over_a_connection_stays_with_the_worker_holding_it(tmp_path: Path) -> None:
    """A BYE from the callee on its connection, with a Route naming worker 0: worker 1
    holds the connection its replies go back on, so it routes the BYE itself."""
    second, handoff = worker(tmp_path / "1", 1, sockets=(PROXY, TCP))
    route = f"<sip:{PROXY.host}:{PROXY.port};transport=tcp;lr;r2=on;kw=0>"
    bye = request("BYE", "sip:alice@127.0.0.1:5070", to_tag="b1", cseq=2, routes=(route,))
    second.receive(bye, TCP_CALLEE, TCP)
    assert handoff.passed == [] and second.take() != []
