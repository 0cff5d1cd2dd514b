"""The pipeline's stages one at a time: plain functions on a parsed request."""
from __future__ import annotations

from kamrouter.net import Endpoint
from kamrouter.pipeline import inbound, outbound, replies
from kamrouter.pipeline.addressing import Identity
from kamrouter.sip import Request, make_request, parse

ME = Endpoint("udp", "127.0.0.1", 5060)


def req(via: str = "SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-1",
        ruri: str = "sip:b@127.0.0.3") -> Request:
    built = make_request("INVITE", ruri, from_uri="sip:a@10.0.0.2", to_uri="sip:b@127.0.0.3",
                         via=via, call_id="c1", from_tag="ft")
    parsed = parse(built.to_bytes())
    assert isinstance(parsed, Request)
    return parsed


def test_received_and_rport_are_stamped_only_when_needed() -> None:
    natted = req("SIP/2.0/UDP 10.0.0.2:5070;rport;branch=z9hG4bK-1")
    inbound.stamp_received(natted, Endpoint("udp", "127.0.0.2", 40000))
    assert natted.get("Via") == ("SIP/2.0/UDP 10.0.0.2:5070;rport=40000;branch=z9hG4bK-1"
                                 ";received=127.0.0.2")
    direct = req("SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-1")
    before = direct.to_bytes()
    inbound.stamp_received(direct, Endpoint("udp", "127.0.0.2", 5070))
    assert direct.to_bytes() == before


def test_a_via_alias_names_the_sent_by_of_a_connection_only() -> None:
    source = Endpoint("tls", "127.0.0.2", 40000)
    aliased = req("SIP/2.0/TLS 127.0.0.2;alias;branch=z9hG4bK-1")
    assert inbound.via_alias(aliased, source) == Endpoint("tls", "127.0.0.2", 5061)
    assert inbound.via_alias(req("SIP/2.0/TLS 127.0.0.2;branch=z9hG4bK-1"), source) is None
    over_udp = req("SIP/2.0/UDP 127.0.0.2;alias;branch=z9hG4bK-1")
    assert inbound.via_alias(over_udp, Endpoint("udp", "127.0.0.2", 40000)) is None
    same = req("SIP/2.0/TLS 127.0.0.2:40000;alias;branch=z9hG4bK-1")
    assert inbound.via_alias(same, source) is None


def test_a_spiral_hashes_differently_from_a_loop() -> None:
    request = req()
    assert inbound.loop_tag(request, "sip:b@127.0.0.3") == inbound.loop_tag(req(), "sip:b@127.0.0.3")
    assert inbound.loop_tag(request, "sip:b@127.0.0.3") != inbound.loop_tag(request, "sip:c@x")


def test_max_forwards_is_capped_then_decremented_and_zero_is_exhausted() -> None:
    request = req()
    assert request.max_forwards == 70
    assert outbound.decrement_max_forwards(request, 10) and request.max_forwards == 9
    request.set_max_forwards(0)
    assert not outbound.decrement_max_forwards(request, 10)


def test_stamping_adds_one_record_route_and_our_via_on_top() -> None:
    request = req()
    outbound.stamp(request, ME, "z9hG4bKours", record_route_from=ME)
    assert request.via.branch == "z9hG4bKours" and request.via.host == "127.0.0.1"
    assert request.get_all("Record-Route") == ["<sip:127.0.0.1:5060;lr>"]
    tcp = Endpoint("tcp", "127.0.0.1", 5060)
    two = req()
    outbound.stamp(two, tcp, "z9hG4bKours", record_route_from=ME)
    assert two.get_all("Record-Route") == ["<sip:127.0.0.1:5060;transport=tcp;lr;r2=on>",
                                           "<sip:127.0.0.1:5060;lr;r2=on>"]


def test_a_retransmission_gets_the_same_stateless_branch() -> None:
    assert outbound.stateless_branch(req()) == outbound.stateless_branch(req())
    other = req("SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-2")
    assert outbound.stateless_branch(req()) != outbound.stateless_branch(other)


def test_a_reply_goes_upstream_only_through_our_own_via() -> None:
    identity = Identity([ME], [])
    reply = replies.stateless_reply(req(), 200, "OK")
    assert replies.upstream_hop(reply, identity) is None  # its top Via is not ours
