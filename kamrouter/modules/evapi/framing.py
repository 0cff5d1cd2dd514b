"""evapi wire framing (sans-IO): netstrings ``<length>:<bytes>,`` or raw chunks."""
from __future__ import annotations

from typing import Protocol

_WHITESPACE = b" \t\r\n"
_MAX_DIGITS = 10


class FramingError(ValueError):
    """The peer sent bytes that are not a netstring; the connection cannot be resynchronised."""


class Decoder(Protocol):
    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages completed by them (maybe none)."""


def encode_netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


class NetstringDecoder:
    """Incremental netstring decoder.

    Whitespace between frames is skipped (controllers often end frames with a newline);
    frames may be split across reads or several may arrive in one. A frame longer than
    ``max_size`` or a malformed header raises :class:`FramingError`: unlike Kamailio, which
    drops its buffer and carries on mid-stream, the server then closes the connection.
    """

    def __init__(self, max_size: int = 32768) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        messages: list[bytes] = []
        start = 0
        while True:
            while start < len(buffer) and buffer[start] in _WHITESPACE:
                start += 1
            colon = buffer.find(b":", start, start + _MAX_DIGITS + 1)
            if colon < 0:
                if len(buffer) - start > _MAX_DIGITS:
                    head = bytes(buffer[start:start + 12])
                    raise FramingError(f"netstring length missing in {head!r}")
                self._check_digits(buffer[start:])
                break
            digits = buffer[start:colon]
            self._check_digits(digits)
            if not digits:
                raise FramingError("netstring length missing before ':'")
            length = int(digits)
            if length > self.max_size:
                raise FramingError(f"netstring of {length} bytes exceeds max_size {self.max_size}")
            end = colon + 1 + length
            if len(buffer) <= end:
                break
            if buffer[end] != ord(","):
                raise FramingError(f"netstring of {length} bytes not terminated by ','")
            messages.append(bytes(buffer[colon + 1:end]))
            start = end + 1
        del buffer[:start]
        return messages

    @staticmethod
    def _check_digits(digits: bytes | bytearray) -> None:
        if digits and not digits.isdigit():
            raise FramingError(f"netstring length is not a number: {bytes(digits[:12])!r}")


class RawDecoder:
    """``netstring_format = false``: every received chunk is one message (as in Kamailio)."""

    def feed(self, data: bytes) -> list[bytes]:
        return [data] if data else []
