"""HTTP/1.1 client messages, sans-IO: a request's bytes, and a parser that turns the bytes
received into one response.

Only what a client of a routing API needs: a request with a Content-Length body, a response
framed by Content-Length, chunked transfer coding or the end of the connection, interim
(1xx) responses skipped, no body for HEAD, 204 and 304. Anything else is a
:class:`ProtocolError`.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Bounds on what a server may send before the body: a misbehaving server must not make
#: the router buffer without limit.
MAX_HEAD_SIZE = 65536
MAX_BODY_SIZE = 16 * 1024 * 1024


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x, or breaks its framing."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    #: (name lower case, value) in the order received.
    headers: list[tuple[str, str]]
    body: bytes
    #: The server will take another request on this connection.
    keep_alive: bool


def encode_request(method: str, target: str, headers: list[tuple[str, str]],
                   body: bytes) -> bytes:
    """A request's bytes; ``headers`` are sent as given (Host included)."""
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if "\r" in value or "\n" in value or not name or ":" in name or " " in name:
            raise ValueError(f"cannot send the header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1") + body


class ResponseParser:
    """Feed it what the connection receives; :meth:`feed` returns the response once whole.

    One parser per request: ``method`` tells whether a body can follow (not for HEAD).
    """

    __slots__ = ("_method", "_buffer", "_head", "_body_size", "_chunks", "_until_close")

    def __init__(self, method: str) -> None:
        self._method = method
        self._buffer = b""
        self._head: tuple[int, list[tuple[str, str]], bool] | None = None
        self._body_size = -1        # Content-Length (chunked: bytes so far)
        self._chunks: list[bytes] | None = None  # chunked body so far
        self._until_close = False

    def feed(self, data: bytes) -> Response | None:
        """Add received bytes; the response when complete, else None."""
        self._buffer = self._buffer + data if self._buffer else data
        while self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_SIZE:
                    raise ProtocolError("response head too large")
                return None
            head, self._buffer = self._buffer[:end], self._buffer[end + 4:]
            self._read_head(head)
        if self._until_close:
            if len(self._buffer) > MAX_BODY_SIZE:
                raise ProtocolError("response body too large")
            return None
        if self._chunks is not None:
            return self._read_chunks()
        if len(self._buffer) < self._body_size:
            return None
        if len(self._buffer) > self._body_size:
            # Bytes after the response: a server that answers twice; do not reuse it.
            return self._finish(self._buffer[:self._body_size], keep_alive=False)
        return self._finish(self._buffer)

    def eof(self) -> Response:
        """The server closed the connection: the response, if it was complete."""
        if self._head is not None and self._until_close:
            return self._finish(self._buffer, keep_alive=False)
        raise ProtocolError("connection closed before the response was complete")

    def _read_head(self, head: bytes) -> None:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        status = int(code)
        headers = []
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon or not name or name[-1] in " \t":
                raise ProtocolError(f"malformed header line {line[:60]!r}")
            headers.append((name.lower(), value.strip()))
        if status < 200:
            return  # interim (100 Continue, 103 ...): the final response follows
        fields = dict(headers)
        connection = fields.get("connection", "").lower()
        keep_alive = ("close" not in connection if version == "HTTP/1.1"
                      else "keep-alive" in connection)
        self._head = (status, headers, keep_alive)
        if self._method == "HEAD" or status in (204, 304):
            self._body_size = 0
        elif fields.get("transfer-encoding", "").lower().endswith("chunked"):
            self._chunks = []
            self._body_size = 0  # counts the chunks' bytes
        elif "content-length" in fields:
            length = fields["content-length"]
            if not length.isdigit() or int(length) > MAX_BODY_SIZE:
                raise ProtocolError(f"bad Content-Length {length[:20]!r}")
            self._body_size = int(length)
        else:
            self._until_close = True

    def _read_chunks(self) -> Response | None:
        chunks = self._chunks
        assert chunks is not None
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                break
            size_text = buffer[:line_end].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                trailers_end = buffer.find(b"\r\n\r\n", line_end)
                if trailers_end < 0:
                    break  # trailers not complete yet
                self._buffer = b""
                return self._finish(b"".join(chunks),
                                    keep_alive=len(buffer) == trailers_end + 4)
            if len(buffer) < line_end + 2 + size + 2:
                break
            self._body_size += size
            if self._body_size > MAX_BODY_SIZE:
                raise ProtocolError("response body too large")
            chunks.append(buffer[line_end + 2:line_end + 2 + size])
            buffer = buffer[line_end + 2 + size + 2:]
        self._buffer = buffer
        return None

    def _finish(self, body: bytes, keep_alive: bool = True) -> Response:
        assert self._head is not None
        status, headers, server_keeps = self._head
        return Response(status, headers, body, keep_alive and server_keeps)
