"""A worker process forwards from its own reply socket: the Via names that socket (so the
replies come back to this worker), the Record-Route the shared listener (where the dialog's
later requests are to arrive), and tm's CANCEL leaves from the same socket."""
from __future__ import annotations

from pathlib import Path

from kamrouter.net import Endpoint
from kamrouter.sip import Request, make_response
from support.pipeline import PROXY, Pipeline

from .test_pipeline import CALLEE, CALLER, RELAY, only, request

SENDER = Endpoint("udp", PROXY.host, 40123)


def test_via_names_the_worker_socket_and_record_route_the_listener(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path, RELAY)
    pipe.wire.senders[PROXY] = SENDER
    pipe.receive(request(), CALLER)
    (invite,) = only(pipe.take(), CALLEE)
    assert isinstance(invite, Request)
    assert (invite.via.host, invite.via.port) == (SENDER.host, SENDER.port)
    # One Record-Route of the listener: not doubled, the worker socket not named.
    assert invite.get_all("Record-Route") == [f"<sip:{PROXY.host}:{PROXY.port};lr>"]
    # The reply arrives on the worker socket and is matched to the transaction.
    ringing = make_response(invite, 180, to_tag="b1").to_bytes()
    pipe.proxy.on_message(ringing, CALLEE, SENDER)
    (relayed,) = only(pipe.take(), CALLER)
    assert relayed.status == 180
    # A CANCEL of the branch carries the same Via as the INVITE.
    pipe.receive(request("CANCEL"), CALLER)
    cancel = [m for m in only(pipe.take(), CALLEE) if isinstance(m, Request)]
    assert [m.method for m in cancel] == ["CANCEL"]
    assert (cancel[0].via.port, cancel[0].via.branch) == (SENDER.port, invite.via.branch)
