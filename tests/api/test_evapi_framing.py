"""evapi netstring framing (sans-IO)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kamrouter.modules.evapi.framing import (
    FramingError,
    NetstringDecoder,
    RawDecoder,
    encode_netstring,
)


def test_encode() -> None:
    assert encode_netstring(b'{"event":"hello"}') == b'17:{"event":"hello"},'
    assert encode_netstring(b"") == b"0:,"


def test_several_frames_in_one_read_and_split_frames() -> None:
    decoder = NetstringDecoder()
    assert decoder.feed(b"5:hello,3:abc,") == [b"hello", b"abc"]
    assert decoder.feed(b"4:ab") == []
    assert decoder.feed(b"cd,") == [b"abcd"]
    assert decoder.feed(b"1") == []
    assert decoder.feed(b"0:0123456789,") == [b"0123456789"]


def test_whitespace_between_frames_is_skipped() -> None:
    assert NetstringDecoder().feed(b"\r\n 2:hi,\n\n2:yo,\n") == [b"hi", b"yo"]


@pytest.mark.parametrize(("data", "problem"), [
    (b"x:abc,", "not a number"),
    (b"3:abcX", "not terminated"),
    (b"12345678901234", "length missing"),
    (b":abc,", "length missing"),
    (b"40000:", "exceeds max_size"),
])
def test_malformed_input_raises(data: bytes, problem: str) -> None:
    with pytest.raises(FramingError, match=problem):
        NetstringDecoder(max_size=32768).feed(data)


@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(min_value=1, max_value=50))
def test_any_chunking_yields_the_same_messages(messages: list[bytes], chunk: int) -> None:
    wire = b"".join(encode_netstring(m) for m in messages)
    decoder = NetstringDecoder()
    out: list[bytes] = []
    for i in range(0, len(wire), chunk):
        out += decoder.feed(wire[i:i + chunk])
    assert out == messages


def test_raw_mode_delivers_chunks() -> None:
    assert RawDecoder().feed(b"abc") == [b"abc"]
    assert RawDecoder().feed(b"") == []
