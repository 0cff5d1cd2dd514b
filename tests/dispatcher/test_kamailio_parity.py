"""Parity with a running Kamailio 5.6 (skipped when it is not installed): the hash of any
input, and the destinations chosen and their failover order for the same list."""
from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamrouter.modules.dispatcher.hashing import ds_hash

from .bench import Bench, make_msg
from .kamailio_ref import KamailioReference, available

pytestmark = pytest.mark.skipif(not available(), reason="kamailio with dispatcher not installed")

LIST = """\
1 sip:127.0.0.1:5071
1 sip:127.0.0.1:5072
1 sip:127.0.0.1:5073 0 5
1 sip:127.0.0.1:5074
1 sip:127.0.0.1:5075 0 5
"""


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[KamailioReference]:
    reference = KamailioReference(tmp_path, LIST)
    yield reference
    reference.close()


def ours(bench: Bench, alg: int, call_id: str, from_user: str = "alice") -> list[str]:
    msg = make_msg(method="OPTIONS", call_id=call_id, from_uri=f"sip:{from_user}@example.com")
    assert bench.api.select_dst(msg, 1, alg)
    return [d.uri for d in msg.vars["_dispatcher"].targets]


def test_hash_of_random_input(kamailio: KamailioReference) -> None:
    rng = random.Random(11)
    alphabet = "abcXYZ019@.:;-_ é€ü\x7f\x80"
    for i in range(30):
        keys = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 13)))]
        if i % 2:
            keys.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))))
        hashid = ds_hash(*keys)
        assert kamailio.rpc("dispatcher.hash", 7, *keys) == {"hashid": hashid, "slot": hashid % 7}


def test_same_order_destinations_and_failover_lists(kamailio: KamailioReference) -> None:
    bench = Bench(LIST)
    listing = kamailio.rpc("dispatcher.list")
    theirs = [t["DEST"]["URI"] for t in listing["RECORDS"][0]["SET"]["TARGETS"]]
    assert [d.uri for d in bench.ds.list.sets[1].targets] == theirs
    for i in range(15):
        call_id, user = f"call-{i}@host", f"user{i}"
        for alg in (0, 1, 8):
            assert ours(bench, alg, call_id, user) == \
                kamailio.destinations(alg, call_id, user), (alg, call_id, user)


def test_same_walk_forward_around_dead_destinations(kamailio: KamailioReference) -> None:
    bench = Bench(LIST)
    for uri in ("sip:127.0.0.1:5072", "sip:127.0.0.1:5075"):
        assert kamailio.rpc("dispatcher.set_state", "ip", 1, uri) == "Ok. Dispatcher state updated."
        bench.api.mark_addr("ip", 1, uri)
    for i in range(15):
        call_id = f"walk-{i}@host"
        assert ours(bench, 0, call_id) == kamailio.destinations(0, call_id), call_id
    for i in range(8):                                     # round robin skips them alike
        call_id = f"rr-{i}@host"
        assert ours(bench, 4, call_id) == kamailio.destinations(4, call_id), call_id
