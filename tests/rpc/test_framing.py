import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kamrouter.rpc.framing import DocumentTooLarge, JsonSplitter

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
documents = st.one_of(st.lists(json_values, max_size=4),
                      st.dictionaries(st.text(max_size=8), json_values, max_size=4))


@given(st.lists(documents, min_size=1, max_size=5), st.data(), st.booleans())
def test_any_chunking_yields_the_documents_back(docs, data, pretty):
    stream = b"\n".join(json.dumps(d, indent=2 if pretty else None).encode() for d in docs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    splitter = JsonSplitter(max_size=1 << 20)
    found = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        found += splitter.feed(stream[start:end])
    assert [json.loads(d) for d in found] == docs
    assert splitter.finish() is None


def test_brackets_and_escapes_inside_strings_do_not_end_a_document():
    splitter = JsonSplitter(1000)
    assert splitter.feed(b'{"a": "}]\\"{", "b": ["\\\\"]') == []
    assert splitter.pending
    assert splitter.feed(b"}  ") == [b'{"a": "}]\\"{", "b": ["\\\\"]}']
    assert not splitter.pending


def test_escape_split_across_chunks():
    splitter = JsonSplitter(1000)
    assert splitter.feed(b'["x\\') == []
    assert splitter.feed(b'"y"]') == [b'["x\\"y"]']


def test_bare_value_runs_to_end_of_line():
    splitter = JsonSplitter(1000)
    assert splitter.feed(b"garbage here") == []
    assert splitter.feed(b"\n{}") == [b"garbage here", b"{}"]


def test_unfinished_document_is_returned_at_end_of_stream():
    splitter = JsonSplitter(1000)
    assert splitter.feed(b'{"method": ') == []
    assert splitter.finish() == b'{"method":'


def test_size_limit():
    splitter = JsonSplitter(10)
    with pytest.raises(DocumentTooLarge):
        splitter.feed(b'{"a": "0123456789"')
