"""nathelper's alias: set_contact_alias on the way in, handle_ruri_alias in the dialog."""
from __future__ import annotations

from kamrouter.modules.nathelper.api import NO_ALIAS, NathelperApi
from kamrouter.net import Endpoint
from kamrouter.script.message import ScriptMessage
from kamrouter.sip import parse

NAT = Endpoint("tcp", "203.0.113.7", 40123)  # the phone's public side, as the router saw it


def request(ruri: str, contact: str = "<sip:alice@192.168.1.20:5060>;expires=60") -> ScriptMessage:
    text = (f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.1.20:5060;branch=z9hG4bK1\r\n"
            "From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n"
            f"Call-ID: c\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n")
    return ScriptMessage(parse(text.encode()), NAT, None)


def test_set_contact_alias_names_the_source_once() -> None:
    nat = NathelperApi()
    msg = request("sip:bob@example.com")
    assert nat.set_contact_alias(msg)
    contact = "<sip:alice@192.168.1.20:5060;alias=203.0.113.7~40123~2>;expires=60"
    assert msg.get_header("Contact") == contact
    assert nat.set_contact_alias(msg) and msg.get_header("Contact") == contact  # kept
    bare = request("sip:bob@example.com", contact="sip:alice@192.168.1.20:5060;expires=60")
    assert nat.set_contact_alias(bare)
    assert bare.get_header("Contact") == \
        "<sip:alice@192.168.1.20:5060;alias=203.0.113.7~40123~2>;expires=60"


def test_handle_ruri_alias_sends_to_the_alias_and_removes_it() -> None:
    nat = NathelperApi()
    msg = request("sip:alice@192.168.1.20:5060;alias=203.0.113.7~40123~2")
    assert nat.handle_ruri_alias(msg) == 1
    assert msg.dst_uri == "sip:203.0.113.7:40123;transport=tcp"
    assert msg.ruri == "sip:alice@192.168.1.20:5060"
    assert nat.handle_ruri_alias(msg) == NO_ALIAS


def test_handle_ruri_alias_refuses_what_is_not_an_address() -> None:
    nat = NathelperApi()
    for alias in ("example.org~5060~1", "203.0.113.7~99999~1", "203.0.113.7~5060~9", "~~",
                  "203.0.113.7"):
        msg = request(f"sip:alice@192.168.1.20;alias={alias}")
        assert nat.handle_ruri_alias(msg) == -1, alias
        assert msg.dst_uri is None
