"""Selection algorithms, walk-forward, spreading and the failover order (sans-IO)."""
from __future__ import annotations

from collections import Counter

from kamrouter.modules.dispatcher.flags import INACTIVE
from kamrouter.modules.dispatcher.hashing import ds_hash
from kamrouter.modules.dispatcher.health import Origin
from .bench import Bench, make_msg

THREE = """
1 sip:127.0.0.1:5071
1 sip:127.0.0.1:5072
1 sip:127.0.0.1:5073
"""
A, B, C = "sip:127.0.0.1:5071", "sip:127.0.0.1:5072", "sip:127.0.0.1:5073"
#: Kamailio's order of THREE (equal priority: reverse list order): what hash slots index.
ORDER = [C, B, A]


def picks(bench: Bench, alg: int, n: int, setid: int = 1, **msg_args: object) -> Counter[str]:
    counts: Counter[str] = Counter()
    for i in range(n):
        args = {"call_id": f"c{i}@x", **msg_args}
        msg = make_msg(**args)  # type: ignore[arg-type]
        assert bench.api.select_dst(msg, setid, alg)
        counts[msg.dst_uri] += 1
    return counts


def down(bench: Bench, uri: str, setid: int = 1) -> None:
    bench.ds.change_state(bench.dest(setid, uri), INACTIVE, Origin.RPC)


def failover(bench: Bench, msg: object) -> list[str]:
    return [d.uri for d in msg.vars["_dispatcher"].targets]  # type: ignore[attr-defined]


def test_round_robin_is_exact_and_skips_dead_targets() -> None:
    bench = Bench(THREE)
    assert picks(bench, 4, 300) == {A: 100, B: 100, C: 100}
    down(bench, B)
    assert picks(bench, 4, 300) == {A: 150, C: 150}


def test_hash_call_id_uses_kamailio_slots() -> None:
    bench = Bench(THREE)
    for i in range(20):
        msg = make_msg(call_id=f"call-{i}@host")
        bench.api.select_dst(msg, 1, 0)
        assert msg.dst_uri == ORDER[ds_hash(f"call-{i}@host") % 3]


def test_hash_from_keeps_a_caller_on_one_target() -> None:
    bench = Bench(THREE)
    for user in ("alice", "bob", "carol", "dave"):
        counts = picks(bench, 1, 10, from_uri=f"sip:{user}@example.com")
        assert len(counts) == 1
    assert len(picks(bench, 1, 50, from_uri="sip:x@example.com")) == 1
    targets = {next(iter(picks(bench, 1, 1, from_uri=f"sip:u{i}@example.com"))) for i in range(30)}
    assert targets == {A, B, C}


def test_hash_to_and_ruri() -> None:
    bench = Bench(THREE)
    assert len(picks(bench, 2, 10, to_uri="sip:support@example.com")) == 1
    assert len(picks(bench, 3, 10, ruri="sip:queue7@example.net")) == 1
    msg = make_msg(ruri="sip:queue7@example.net:5080")
    bench.api.select_dst(msg, 1, 3)
    assert msg.dst_uri == ORDER[ds_hash("queue7", "example.net:5080") % 3]


def test_dead_target_share_goes_to_the_next_one_by_default() -> None:
    bench = Bench(THREE)
    before = {f"k{i}": next(iter(picks(bench, 0, 1, call_id=f"k{i}"))) for i in range(300)}
    down(bench, B)
    after = {key: next(iter(picks(bench, 0, 1, call_id=key))) for key in before}
    moved = {before[k]: after[k] for k in before if before[k] != after[k]}
    assert moved == {B: A}                 # Kamailio's walk forward: to the next in ORDER
    assert all(after[k] == before[k] for k in before if before[k] != B)


def test_spread_option_shares_a_dead_target_over_all_live_ones() -> None:
    bench = Bench(THREE, dead_target_share="spread")
    before = {f"k{i}": next(iter(picks(bench, 0, 1, call_id=f"k{i}"))) for i in range(600)}
    down(bench, B)
    after = {key: next(iter(picks(bench, 0, 1, call_id=key))) for key in before}
    orphans = Counter(after[k] for k in before if before[k] == B)
    assert set(orphans) == {A, C}
    assert min(orphans.values()) > 0.35 * sum(orphans.values())
    assert all(after[k] == before[k] for k in before if before[k] != B)   # others stay put
    again = {key: next(iter(picks(bench, 0, 1, call_id=key))) for key in before}
    assert again == after                                                   # consistent


def test_weight_is_exact_and_a_dead_targets_share_moves() -> None:
    bench = Bench("2 sip:127.0.0.1:5081 0 0 weight=70\n2 sip:127.0.0.1:5082 0 0 weight=30\n")
    counts = picks(bench, 9, 1000, setid=2)
    assert counts == {"sip:127.0.0.1:5081": 700, "sip:127.0.0.1:5082": 300}
    down(bench, "sip:127.0.0.1:5081", 2)
    assert picks(bench, 9, 10, setid=2) == {"sip:127.0.0.1:5082": 10}


def test_weight_spread_keeps_proportions_among_live_targets() -> None:
    bench = Bench("1 sip:127.0.0.1:5071 0 0 weight=50\n1 sip:127.0.0.1:5072 0 0 weight=30\n"
                  "1 sip:127.0.0.1:5073 0 0 weight=20\n", dead_target_share="spread")
    down(bench, A)
    assert picks(bench, 9, 500) == {B: 300, C: 200}


def test_relative_weight_only_counts_active_targets() -> None:
    bench = Bench("1 sip:127.0.0.1:5071 0 0 rweight=50\n1 sip:127.0.0.1:5072 0 0 rweight=25\n"
                  "1 sip:127.0.0.1:5073 0 0 rweight=25\n")
    assert picks(bench, 11, 400) == {A: 200, B: 100, C: 100}
    down(bench, A)
    assert picks(bench, 11, 400) == {B: 200, C: 200}


def test_serial_by_priority_and_failover_order() -> None:
    bench = Bench("3 sip:127.0.0.1:5091 0 5\n3 sip:127.0.0.1:5092 0 10\n3 sip:127.0.0.1:5093 0 1\n")
    msg = make_msg()
    assert bench.api.select_dst(msg, 3, 8)
    assert failover(bench, msg) == ["sip:127.0.0.1:5092", "sip:127.0.0.1:5091",
                                    "sip:127.0.0.1:5093"]


def test_failover_order_wraps_after_the_chosen_target_and_honours_limit() -> None:
    d = "sip:127.0.0.1:5074"
    bench = Bench(THREE + f"1 {d}\n")
    assert [t.uri for t in bench.ds.list.sets[1].targets] == [d, C, B, A]
    down(bench, C)
    msg = make_msg()
    bench.ds.list.sets[1].rr_next = 1
    bench.api.select_dst(msg, 1, 4)                       # lands on C (down): walks to B
    assert failover(bench, msg) == [B, A, d]
    msg = make_msg()
    bench.api.select_dst(msg, 1, 4, limit=2)
    assert failover(bench, msg) == [A, d]


def test_use_default_reserves_the_last_target() -> None:
    bench = Bench(THREE, use_default=True)                # the last of ORDER: A
    assert picks(bench, 4, 10) == {C: 5, B: 5}
    msg = make_msg()
    bench.api.select_dst(msg, 1, 4)
    assert failover(bench, msg)[-1] == A
    down(bench, C)
    down(bench, B)
    assert picks(bench, 4, 3) == {A: 3}
    down(bench, A)
    assert not bench.api.select_dst(make_msg(), 1, 4)


def test_nothing_usable_fails_and_counts() -> None:
    bench = Bench(THREE)
    for uri in (A, B, C):
        down(bench, uri)
    msg = make_msg()
    assert not bench.api.select_dst(msg, 1, 0)
    assert msg.dst_uri is None and "_dispatcher" not in msg.vars
    assert not bench.api.select_dst(msg, 9, 0)            # no such set
    assert bench.stats.get("dispatcher", "set1_select_failures").value == 1


def test_call_load_picks_least_loaded_under_maxload() -> None:
    bench = Bench("2 sip:127.0.0.1:5081 0 1 maxload=2\n2 sip:127.0.0.1:5082 0 0 maxload=1\n")
    x, y = "sip:127.0.0.1:5081", "sip:127.0.0.1:5082"
    m1, m2, m3, m4 = (make_msg(call_id=f"load-{i}") for i in range(4))
    assert bench.api.select_dst(m1, 2, 10) and m1.dst_uri == x
    assert bench.api.select_dst(m2, 2, 10) and m2.dst_uri == y
    assert bench.api.select_dst(m3, 2, 10) and m3.dst_uri == x
    assert failover(bench, m3) == [x]                       # y is full: not a failover option
    assert not bench.api.select_dst(m4, 2, 10)              # everything full
    assert bench.api.load_unset(m2)
    assert bench.api.select_dst(m4, 2, 10) and m4.dst_uri == y
    assert bench.dest(2, x).health.load == 2
    bye = make_msg("BYE", call_id="load-0")
    assert bench.api.load_update(bye) and bench.dest(2, x).health.load == 1
    options = make_msg("OPTIONS", call_id="other")
    assert bench.api.select_dst(options, 2, 10) and options.dst_uri == x  # not counted
    assert bench.dest(2, x).health.load == 1


def test_call_load_moves_on_failover_and_expires() -> None:
    bench = Bench("2 sip:127.0.0.1:5081\n2 sip:127.0.0.1:5082\n", call_load_init_expire=30,
                  call_load_expire=3600)
    msg = make_msg(call_id="moving")
    bench.api.select_dst(msg, 2, 10)
    first = msg.dst_uri
    assert bench.api.next_dst(msg)
    assert bench.dest(2, first).health.load == 0 and bench.dest(2, msg.dst_uri).health.load == 1
    assert not bench.api.next_dst(msg)                     # exhausted: load released
    assert bench.ds.calls.expire_due(bench.clock.now) == 0 and len(bench.ds.calls) == 0
    bench.api.select_dst(make_msg(call_id="a"), 2, 10)
    bench.api.select_dst(make_msg(call_id="b"), 2, 10)
    assert bench.ds.calls.confirm("b", bench.clock.now)
    bench.clock.now += 31
    assert bench.ds.calls.expire_due(bench.clock.now) == 1   # a never answered
    assert len(bench.ds.calls) == 1


def test_parallel_forks_to_every_usable_target() -> None:
    bench = Bench(THREE + "1 sip:127.0.0.1:5074 0 0 socket=udp:127.0.0.1:5060\n")
    down(bench, B)
    msg = make_msg(ruri="sip:conf@example.net")
    assert bench.api.select_dst(msg, 1, 12)
    assert (msg.dst_uri, msg.socket) == ("sip:127.0.0.1:5074", "udp:127.0.0.1:5060")
    # Extra branches of tm.relay's destination set, each with its own target's socket.
    assert [(t.uri, t.dst_uri, t.socket) for t in msg.branches] == [
        ("sip:conf@example.net", C, None), ("sip:conf@example.net", A, None)]
    assert not bench.api.next_dst(msg)
    msg = make_msg(ruri="sip:conf@example.net")
    assert bench.api.select_domain(msg, 1, 12)
    assert msg.ruri == "sip:conf@127.0.0.1:5074" and msg.dst_uri is None
    assert [(t.uri, t.dst_uri) for t in msg.branches] == [
        ("sip:conf@127.0.0.1:5073", None), ("sip:conf@127.0.0.1:5071", None)]


def test_latency_prefers_the_fastest_and_round_robins_ties() -> None:
    bench = Bench(THREE)
    for uri, rtt in ((A, 40.0), (B, 5.0), (C, 5.0)):
        bench.dest(1, uri).health.latency.add(rtt, 1.0)
    assert picks(bench, 13, 10) == {B: 5, C: 5}
    msg = make_msg()
    bench.api.select_dst(msg, 1, 13)
    assert failover(bench, msg)[-1] == A


def test_auth_username_hash_falls_back_to_round_robin() -> None:
    bench = Bench(THREE)
    creds = ('Digest username="alice", realm="x", nonce="n", uri="sip:x", response="r"',)
    counts = picks(bench, 5, 12, headers=(("Proxy-Authorization", creds[0]),))
    assert counts == {ORDER[ds_hash("alice") % 3]: 12}
    assert picks(bench, 5, 12) == {A: 4, B: 4, C: 4}


def test_hash_key_template() -> None:
    bench = Bench(THREE, hash_key="{header:X-Tenant}")
    counts = picks(bench, 7, 10, headers=(("X-Tenant", "acme"),))
    assert counts == {ORDER[ds_hash("acme") % 3]: 10}


def test_random_uses_every_target() -> None:
    bench = Bench(THREE)
    counts = picks(bench, 6, 300)
    assert set(counts) == {A, B, C} and min(counts.values()) > 60


def test_unknown_algorithm_takes_the_first_target() -> None:
    bench = Bench(THREE)
    assert picks(bench, 99, 5) == {C: 5}
