"""The script API on real parsed messages (selection storage, failover, marks, matching)."""
from __future__ import annotations

from kamrouter.modules.dispatcher.flags import state_letters
from kamrouter.net import Endpoint
from .bench import Bench, make_msg

A, B, C = "sip:127.0.0.1:5071", "sip:127.0.0.1:5072", "sip:127.0.0.1:5073"
LIST = f"""
1 {A} 0 10 socket=udp:127.0.0.1:5060;tier=gold
1 {B} 0 5
1 {C}
2 sip:[::1]:5090;transport=tcp 0 0 duid=v6
3 sip:media.example.net 16
"""


def test_select_dst_sets_next_hop_and_socket() -> None:
    bench = Bench(LIST)
    msg = make_msg(ruri="sip:bob@example.net")
    assert bench.api.select_dst(msg, 1, 8)
    assert (msg.dst_uri, msg.socket, msg.ruri) == (A, "udp:127.0.0.1:5060", "sip:bob@example.net")
    chosen = bench.api.selected(msg)
    assert chosen.uri == A and chosen.attrs.values["tier"] == "gold" and chosen.setid == 1


def test_force_dst_off_keeps_a_next_hop_the_script_set() -> None:
    bench = Bench(LIST, force_dst=False)
    msg = make_msg()
    msg.dst_uri = "sip:127.0.0.1:6000"
    assert not bench.api.select_dst(msg, 1, 8)
    assert msg.dst_uri == "sip:127.0.0.1:6000"


def test_select_domain_and_next_domain_rewrite_the_request_uri() -> None:
    bench = Bench(LIST)
    msg = make_msg(ruri="sip:bob@example.net;user=phone")
    assert bench.api.select_domain(msg, 2, 8)
    assert msg.ruri == "sip:bob@[::1]:5090;user=phone" and msg.dst_uri is None
    msg = make_msg(ruri="sip:bob@example.net:5080")
    assert bench.api.select_domain(msg, 1, 8) and msg.ruri == "sip:bob@127.0.0.1:5071"
    assert bench.api.next_domain(msg) and msg.ruri == "sip:bob@127.0.0.1:5072"


def test_select_only_stores_the_choice() -> None:
    bench = Bench(LIST)
    msg = make_msg()
    assert bench.api.select(msg, 1, 4)
    assert msg.dst_uri is None and bench.api.selected(msg).uri == A
    assert bench.api.next_dst(msg) and msg.dst_uri == B


def test_failover_walks_the_list_skipping_targets_that_died_meanwhile() -> None:
    bench = Bench(LIST)
    msg = make_msg()
    bench.api.select_dst(msg, 1, 8)
    assert bench.api.mark_dst(msg, "ip")
    bench.api.mark_addr("i", 1, B)                      # another call found B dead
    assert bench.api.next_dst(msg) and msg.dst_uri == C
    assert not bench.api.next_dst(msg)
    assert bench.api.selected(msg) is None and not bench.api.mark_dst(msg)
    assert [bench.dest(1, uri).health.selected for uri in (A, B, C)] == [1, 0, 1]
    assert bench.stats.get("dispatcher", "set1_failovers").value == 1
    assert bench.stats.get("dispatcher", "failovers").value == 1
    assert bench.stats.get("dispatcher", "selections").value == 1


def test_mark_dst_takes_effect_at_once_and_raises_events() -> None:
    bench = Bench(LIST)
    msg = make_msg()
    bench.api.select_dst(msg, 1, 8)
    msg.status, msg.reason = 408, "Request Timeout"   # as in a failure route
    bench.api.mark_dst(msg, "ip")
    assert state_letters(bench.flags(1, A)) == "IP"
    assert not bench.api.is_active(1, A) and bench.api.is_active(1)
    fresh = make_msg(call_id="next")
    assert bench.api.select_dst(fresh, 1, 8) and fresh.dst_uri == B
    (event, data), = bench.events
    assert event == "dispatcher:dst-down"
    assert (data["setid"], data["uri"], data["origin"], data["state"]) == (1, A, "script", "inactive")
    assert (data["code"], data["reason"]) == (408, "Request Timeout")
    bench.api.mark_addr("a", 1, A)
    assert bench.events.names()[-1] == ("dispatcher:dst-up", A)
    assert not bench.api.mark_addr("a", 1, "sip:nowhere")


def test_next_dst_without_selection() -> None:
    assert not Bench(LIST).api.next_dst(make_msg())


def test_is_from_list_modes() -> None:
    bench = Bench(LIST)
    api = bench.api
    from_a = make_msg(source=Endpoint("udp", "127.0.0.1", 5071))
    assert api.is_from_list(from_a).uri == A
    assert api.is_from_list(from_a, 2) is None
    from_a_tcp = make_msg(source=Endpoint("tcp", "127.0.0.1", 5071))
    assert api.is_from_list(from_a_tcp).uri == A            # default mode 2 ignores protocol
    assert api.is_from_list(from_a_tcp, -1, 0) is None      # mode 0: ip, port and protocol
    other_port = make_msg(source=Endpoint("udp", "127.0.0.1", 40000))
    assert api.is_from_list(other_port) is None
    assert api.is_from_list(other_port, 1, 1 | 2).uri == A  # ignore port
    v6 = make_msg(source=Endpoint("tcp", "0:0::1", 5090))
    assert api.is_from_list(v6, -1, 0).attrs.duid == "v6"
    api.mark_addr("i", 1, A)
    assert api.is_from_list(from_a, -1, 2 | 4) is None      # must be active
    assert api.is_from_list(make_msg(), -1, 2, uri="sip:127.0.0.1:5072").uri == B
    closest = api.is_from_list(make_msg(source=Endpoint("tcp", "127.0.0.1", 5073)), -1, 16)
    assert closest.uri == C
    assert api.is_from_list(make_msg(source=Endpoint("udp", "10.9.9.9", 5060)), -1, 16) is None


def test_is_from_list_uses_resolved_names_but_never_nodnsares_targets() -> None:
    bench = Bench(LIST.replace("sip:media.example.net 16", "sip:media.example.net 0"))
    bench.ds.set_resolved("media.example.net", frozenset({"127.0.0.9"}))
    assert bench.api.is_from_list(make_msg(source=Endpoint("udp", "127.0.0.9", 5060))).setid == 3
    bench = Bench(LIST)
    bench.ds.set_resolved("media.example.net", frozenset({"127.0.0.9"}))
    assert bench.api.is_from_list(make_msg(source=Endpoint("udp", "127.0.0.9", 5060))) is None


def test_list_exists() -> None:
    api = Bench(LIST).api
    assert api.list_exists(1) and not api.list_exists(4)
    assert not api.is_active(4)
