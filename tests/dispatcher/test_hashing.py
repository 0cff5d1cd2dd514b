"""Kamailio's dispatcher hash, checked against values Kamailio 5.6.3 returned (a live
comparison is in test_kamailio_parity.py)."""
from __future__ import annotations

import pytest

from kamrouter.modules.dispatcher.hashing import ds_hash, hash_slot, uri_hash_keys

#: (nslots, val1[, val2]) -> hashid, slot, from ``dispatcher.hash`` on Kamailio 5.6.3
#: (the first two are the spec's reference values; the rest include non-ASCII bytes).
KAMAILIO_VALUES = [
    ((4, "bob", "server.com"), 3883463682, 2),
    ((0, "alice"), 1834153949, 0),
    ((9, "tYgj "), 2061860219, 8),
    ((8, "x", "Bel31iEl"), 2172807717, 5),
    ((8, "h\x7fpCh\x80", "YgCfürL1s"), 2469048992, 0),
    ((3, "\x80"), 3760405368, 0),
    ((3, "m€i\x7fh", "A. 2O76UM"), 4058349323, 2),
    ((7, "\x805KXSc7Tvo", "hBKqFYY"), 2467809708, 0),
    ((6, "v", "Z€Jr3€J"), 1990084437, 3),
    ((9, "üYYZYn9ZhyiA4", "oR"), 2100807456, 6),
    ((9, "x"), 119, 2),
    ((9, "C é:QCyEZDz-", "TddJ8Hy"), 901333364, 5),
    ((6, "RA9"), 5773023, 3),
    ((0, "HZt ;\x80.PlJhx2"), 3647937255, 0),
    ((6, "x", "Iq"), 16608, 0),
    ((7, "héllo wörld €", "ü"), 3501944738, 5),
]


@pytest.mark.parametrize(("params", "hashid", "slot"), KAMAILIO_VALUES)
def test_hash_matches_kamailio(params: tuple, hashid: int, slot: int) -> None:
    nslots, *keys = params
    assert ds_hash(*keys) == hashid
    assert hash_slot(ds_hash(*keys), nslots) == slot


def test_hash_edge_cases() -> None:
    assert ds_hash(None) == 0
    assert ds_hash("") == 1          # an all-zero hash is reported as 1
    assert ds_hash(b"bob", b"server.com") == ds_hash("bob", "server.com")
    assert ds_hash("bob", "") == ds_hash("bob")   # an empty second key adds nothing


def test_uri_hash_keys() -> None:
    assert uri_hash_keys("sip", "bob", "example.com", None, False) == ("bob", "example.com")
    assert uri_hash_keys("sip", "bob", "example.com", 5060, False) == ("bob", "example.com")
    assert uri_hash_keys("sip", "bob", "example.com", 5070, False) == ("bob", "example.com:5070")
    assert uri_hash_keys("sips", "bob", "example.com", 5061, False) == ("bob", "example.com")
    assert uri_hash_keys("sips", "bob", "example.com", 5060, False) == ("bob", "example.com:5060")
    assert uri_hash_keys("sip", "bob", "example.com", 5070, True) == ("bob", None)
    assert uri_hash_keys("sip", None, "example.com", None, False) == ("", "example.com")
