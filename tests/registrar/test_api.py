"""registrar script API on stand-ins: lookup, serial forking groups, registered/unregister,
reg_fetch_contacts."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from kamrouter.core.settings import Settings
from kamrouter.modules.registrar.api import LookupResult, RegistrarApi
from kamrouter.modules.registrar.config import RegistrarConfig
from kamrouter.modules.usrloc import UsrlocModule
from kamrouter.modules.usrloc.config import UsrlocConfig
from kamrouter.modules.usrloc.location import Binding
from kamrouter.net import Endpoint
from kamrouter.script.message import ScriptMessage
from kamrouter.sip import parse

from support.doubles import FakeClock as Clock
from support.doubles import StandInRouter


def invite() -> ScriptMessage:
    text = ("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
            "From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n"
            "Call-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    return ScriptMessage(parse(text.encode()), Endpoint("udp", "127.0.0.1", 5070), None)


def api(tmp_path: Path, router: StandInRouter | None = None
        ) -> tuple[RegistrarApi, UsrlocModule, Clock]:
    clock = Clock()
    router = router or StandInRouter(Settings(base_dir=tmp_path), clock=clock)
    router.own_endpoints.add("127.0.0.1", 5060)  # the socket the bindings below name
    usrloc = UsrlocModule(router, UsrlocConfig(), clock)
    module = SimpleNamespace(config=RegistrarConfig(), usrloc=usrloc, router=router)
    return RegistrarApi(module), usrloc, clock  # type: ignore[arg-type]


def test_lookup_skips_a_websocket_binding_whose_connection_is_gone(tmp_path: Path) -> None:
    router = StandInRouter(Settings(base_dir=tmp_path))
    registrar, usrloc, clock = api(tmp_path, router)
    browser = Endpoint("wss", "127.0.0.1", 40000)
    usrloc.table("location").put("bob", Binding(
        "sip:bob@x.invalid;transport=ws", clock.now + 60, received="sip:127.0.0.1:40000"
        ";transport=wss", socket="wss:127.0.0.1:8443"))
    msg = invite()
    assert registrar.lookup(msg) is LookupResult.NOT_FOUND  # the browser is gone
    router.connections.add(browser)
    assert registrar.lookup(msg) is LookupResult.FOUND
    assert msg.dst_uri == "sip:127.0.0.1:40000;transport=wss"


def test_lookup_and_contacts_by_q(tmp_path: Path) -> None:
    registrar, usrloc, clock = api(tmp_path)
    table = usrloc.table("location")
    msg = invite()
    assert registrar.lookup(msg) is LookupResult.NOT_FOUND and not registrar.registered(msg)
    table.put("bob", Binding("sip:bob@10.0.0.1", clock.now + 60, q=500,
                             received="sip:192.0.2.1:4000", socket="udp:127.0.0.1:5060"))
    table.put("bob", Binding("sip:bob@10.0.0.2", clock.now + 60, q=1000,
                             path="<sip:edge;lr>"))
    table.put("bob", Binding("sip:bob@10.0.0.3", clock.now + 60, q=500))
    assert registrar.lookup(msg) and registrar.registered(msg)
    assert (msg.ruri, msg.dst_uri, msg.path) == ("sip:bob@10.0.0.2", None, "<sip:edge;lr>")
    assert [b.uri for b in msg.branches] == ["sip:bob@10.0.0.1", "sip:bob@10.0.0.3"]
    assert msg.branches[0].dst_uri == "sip:192.0.2.1:4000"
    assert msg.branches[0].socket == "udp:127.0.0.1:5060"

    assert registrar.load_contacts(msg) and msg.branches == []
    assert registrar.next_contacts(msg)  # q=1.0 alone
    assert msg.ruri == "sip:bob@10.0.0.2" and msg.branches == []
    assert registrar.next_contacts(msg)  # both q=0.5 at once
    assert (msg.ruri, msg.dst_uri) == ("sip:bob@10.0.0.1", "sip:192.0.2.1:4000")
    assert [(b.uri, b.path) for b in msg.branches] == [("sip:bob@10.0.0.3", None)]
    assert not registrar.next_contacts(msg)

    fetched = registrar.reg_fetch_contacts("location", "sip:bob@example.com")
    assert [c["addr"] for c in fetched] == ["sip:bob@10.0.0.2", "sip:bob@10.0.0.1",
                                            "sip:bob@10.0.0.3"]
    ruid = fetched[0]["ruid"]
    assert registrar.unregister(msg, "location", "sip:bob@example.com", ruid) == 1
    assert registrar.unregister(msg, "location", "sip:bob@example.com") == 2
    assert registrar.unregister(msg, "location", "sip:bob@example.com") == -1
    assert registrar.lookup(msg, uri="tel:+123") is LookupResult.ERROR


def test_a_socket_of_another_node_is_not_forced(tmp_path: Path) -> None:
    """A binding saved through another node (shared through Redis) names that node's
    socket: this node sends from its own default socket instead."""
    registrar, usrloc, clock = api(tmp_path)
    usrloc.table("location").put("bob", Binding("sip:bob@10.0.0.1", clock.now + 60,
                                                socket="udp:127.0.0.9:5060"))
    msg = invite()
    assert registrar.lookup(msg) and msg.ruri == "sip:bob@10.0.0.1" and msg.socket is None
