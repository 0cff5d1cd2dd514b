"""The fast path of digest parameter parsing gives what the general grammar gives."""
from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kamrouter.sip import SipParseError
from kamrouter.sip import auth as sip_auth

names = st.sampled_from(["username", "realm", "nonce", "uri", "response", "qop", "nc",
                         "Algorithm", "x-y"])
values = st.one_of(st.from_regex(r'[A-Za-z0-9:@./=+-]{1,12}', fullmatch=True),
                   st.from_regex(r'"[A-Za-z0-9 :@,<>./=+-]{0,12}"', fullmatch=True))
spaces = st.sampled_from(["", " ", "\t", "  "])


def general(value: str) -> object:
    """The general path only: the fast path's pattern replaced by one that never matches."""
    saved = sip_auth._PLAIN_ITEM
    sip_auth._PLAIN_ITEM = re.compile(r"(?!)")
    try:
        return sip_auth._parse(value, "Authorization")
    except SipParseError as exc:
        return ("error", exc.reason)
    finally:
        sip_auth._PLAIN_ITEM = saved


def fast(value: str) -> object:
    try:
        return sip_auth._parse(value, "Authorization")
    except SipParseError as exc:
        return ("error", exc.reason)


@given(st.lists(st.tuples(spaces, names, spaces, values, spaces), min_size=1, max_size=6),
       st.sampled_from([",", ", ", " ,", ",,"]))
def test_same_params_as_the_general_grammar(items: list, separator: str) -> None:
    value = "Digest " + separator.join(f"{a}{n}{b}={c}{v}" for a, n, b, v, c in items)
    assert fast(value) == general(value)
