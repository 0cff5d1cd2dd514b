"""Framing SIP messages out of a byte stream (TCP/TLS) by Content-Length (RFC 3261 §18.3)."""
from __future__ import annotations

import re

from .errors import SipLimitError, SipParseError
from .message import DEFAULT_MAX_SIZE, Message, parse

# Content-Length (or compact "l") at the start of a header line; folded values allowed.
_CR_LF = (13, 10)
_CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(?:\r\n[ \t]+)?([^\r\n]*)", re.I)


class StreamFramer:
    """Accumulates stream bytes and cuts them into whole messages.

    ``feed()`` data as it arrives, then call ``next_message()`` until it returns None.
    CRLFs before a message are keep-alives (RFC 5626 §3.5.1): each ``CRLFCRLF`` ping
    counts one in ``keepalives``. Errors are SipParseError; the stream is then unusable
    and the transport should answer if it can and close the connection.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self.keepalives = 0
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buf)

    @property
    def in_message(self) -> bool:
        """Part of a message is buffered (not only keep-alive CRLFs: once a message starts,
        next_message() has dropped the CRLFs before it)."""
        buf = self._buf
        return bool(buf) and buf[0] not in _CR_LF

    def next_message(self) -> bytes | None:
        buf = self._buf
        if buf.startswith((b"\r", b"\n")):
            self._skip_keepalives()
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buf) > self.max_size:
                exc = SipLimitError(513, f"Message Too Large: header section over "
                                         f"{self.max_size} bytes")
                # the header lines so far, so the transport can answer before it closes
                exc.message = self._salvage(buf.rfind(b"\r\n", 0, self.max_size) - 2)
                raise exc
            return None
        try:
            total = head_end + 4 + self._content_length(head_end)
            if total > self.max_size:
                raise SipLimitError(513, f"Message Too Large: {total} bytes, "
                                         f"limit {self.max_size}")
        except SipParseError as exc:
            exc.message = self._salvage(head_end)  # so the transport can still answer
            raise
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        return message

    def _content_length(self, head_end: int) -> int:
        lengths = _CONTENT_LENGTH.findall(self._buf, 0, head_end + 2)
        if not lengths:
            raise SipParseError(400, "Missing Content-Length header (required on a stream)")
        if len(lengths) > 1:
            raise SipParseError(400, "Duplicate Content-Length header")
        length = lengths[0].strip()
        if not length.isdigit() or len(length) > 10:
            raise SipParseError(400, f"Bad Content-Length: not a number: {length[:20]!r}")
        return int(length)

    def _salvage(self, head_end: int) -> Message | None:
        """The header section (up to ``head_end`` + CRLFCRLF) as a message, good enough to
        build an error reply, if any."""
        if head_end < 0:
            return None
        head = bytes(self._buf[: head_end + 4])
        try:
            return parse(head, max_size=len(head))
        except SipParseError as exc:
            return exc.message

    def _skip_keepalives(self) -> None:
        buf = self._buf
        stripped = buf.lstrip(b"\r\n")
        skipped = len(buf) - len(stripped)
        if not stripped:
            # a lone CRLF may be the first half of a ping: keep it until more arrives
            self.keepalives += skipped // 4
            del buf[: skipped - skipped % 4]
            return
        self.keepalives += skipped // 4
        del buf[:skipped]
