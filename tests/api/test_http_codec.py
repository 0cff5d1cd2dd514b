"""The HTTP/1.1 client codec under http_client, sans-IO: bytes in, responses out."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kamrouter.modules.http_client.codec import (
    ProtocolError,
    Response,
    ResponseParser,
    encode_request,
)


def feed_all(parser: ResponseParser, *parts: bytes) -> Response | None:
    response = None
    for part in parts:
        assert response is None, "the response was complete before all parts were fed"
        response = parser.feed(part)
    return response


def test_a_post_carries_its_length_and_the_given_headers_in_order() -> None:
    data = encode_request("POST", "/route?x=1", [("Host", "127.0.0.1:8090"),
                                                  ("Content-Type", "application/json")], b"{}")
    assert data == (b"POST /route?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8090\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    assert encode_request("GET", "/", [("Host", "h")], b"") == b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


@pytest.mark.parametrize("name,value", [("X-A", "one\r\nX-Injected: two"), ("Bad Name", "v"),
                                        ("", "v"), ("X:Y", "v")])
def test_a_header_that_would_break_the_request_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="cannot send the header"):
        encode_request("GET", "/", [(name, value)], b"")


def test_content_length_body_split_across_receives() -> None:
    parser = ResponseParser("POST")
    response = feed_all(parser, b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 11\r\nX-A: b \r\n\r\nhello",
                        b" world")
    assert response == Response(200, [("content-length", "11"), ("x-a", "b")], b"hello world",
                                keep_alive=True)


def test_interim_responses_are_skipped() -> None:
    response = ResponseParser("POST").feed(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert response is not None and (response.status, response.body) == (204, b"")


def test_chunked_body_with_extensions_and_trailers() -> None:
    parser = ResponseParser("GET")
    response = feed_all(parser, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nsip:",
                        b"\r\n9\r\na@example\r\n0\r\nX-Trailer: t\r\n", b"\r\n")
    assert response is not None and response.body == b"sip:a@example" and response.keep_alive


def test_body_until_close_and_a_truncated_body() -> None:
    parser = ResponseParser("GET")
    assert parser.feed(b"HTTP/1.1 200 OK\r\n\r\nsome") is None
    assert parser.feed(b" text") is None
    assert parser.eof() == Response(200, [], b"some text", keep_alive=False)
    short = ResponseParser("GET")
    assert short.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") is None
    with pytest.raises(ProtocolError, match="closed before the response was complete"):
        short.eof()


def test_head_has_no_body_even_with_a_length() -> None:
    response = ResponseParser("HEAD").feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    assert response is not None and response.body == b""


@pytest.mark.parametrize("head,keep_alive", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n", False),  # extra bytes
])
def test_whether_the_connection_can_be_reused(head: bytes, keep_alive: bool) -> None:
    response = ResponseParser("GET").feed(head)
    assert response is not None and response.keep_alive is keep_alive


@pytest.mark.parametrize("data,reason", [
    (b"this is not HTTP\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 2x0 OK\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
])
def test_what_is_not_http_is_a_protocol_error(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        ResponseParser("GET").feed(data)


def test_a_head_without_end_is_bounded() -> None:
    with pytest.raises(ProtocolError, match="head too large"):
        ResponseParser("GET").feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000)


@given(st.lists(st.binary(max_size=200), max_size=5))
def test_the_parser_raises_only_protocol_errors(parts: list[bytes]) -> None:
    parser = ResponseParser("GET")
    try:
        for part in [b"HTTP/1.1 200 OK\r\n", *parts]:
            if parser.feed(part) is not None:
                break
        else:
            parser.eof()
    except ProtocolError:
        pass
