"""Splitting a byte stream into whole JSON documents (sans-IO).

The stream socket and the FIFO carry "one JSON document per request" with no length prefix:
a client may write compact JSON ending in a newline, pretty-printed JSON over many lines, or
several documents back to back. :class:`JsonSplitter` finds where each top-level object or
array ends by tracking bracket depth outside strings (regex jumps, so a 1 MB document costs a
few milliseconds); parsing is left to the dispatcher, which turns a malformed document into a
Parse error reply. Anything else at the top level (a bare ``42`` or garbage) runs to the end of
its line and is handed on as one document, so the client gets an error rather than silence.
"""
from __future__ import annotations

import re

_STRUCTURAL = re.compile(rb'[\[\]{}"]')
_STRING_SPECIAL = re.compile(rb'["\\]')
_NON_SPACE = re.compile(rb"[^ \t\r\n]")
_OPEN = frozenset(b"[{")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


class DocumentTooLarge(Exception):
    """A document grew past the size limit; ``documents`` are the whole ones before it."""

    def __init__(self, message: str, documents: list[bytes]) -> None:
        super().__init__(message)
        self.documents = documents


class JsonSplitter:
    """Feed bytes in, get complete JSON documents (as bytes) out."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._pos = 0          # where scanning resumes
        self._depth = 0        # bracket depth of the document being read
        self._in_string = False

    @property
    def pending(self) -> bool:
        """True while part of a document is buffered (the client is mid-request)."""
        return bool(_NON_SPACE.search(self._buf))

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """Add ``data``; return the documents it completed, in order."""
        buf = self._buf
        buf += data
        documents: list[bytes] = []
        pos = self._pos
        while True:
            if self._depth == 0:
                start = _NON_SPACE.search(buf, pos)
                if start is None:
                    del buf[:]
                    pos = 0
                    break
                first = start.start()
                if buf[first] not in _OPEN:
                    end = buf.find(b"\n", first)
                    if end < 0:
                        del buf[:first]
                        pos = 0
                        break
                    documents.append(bytes(buf[first:end]))
                    del buf[:end + 1]
                    pos = 0
                    continue
                del buf[:first]
                pos, self._depth = 1, 1
            elif self._in_string:
                special = _STRING_SPECIAL.search(buf, pos)
                if special is None:
                    pos = len(buf)
                    break
                at = special.start()
                if buf[at] == _BACKSLASH:
                    if at + 1 >= len(buf):  # the escaped byte is in the next chunk
                        pos = at
                        break
                    pos = at + 2
                else:
                    self._in_string = False
                    pos = at + 1
            else:
                token = _STRUCTURAL.search(buf, pos)
                if token is None:
                    pos = len(buf)
                    break
                char = buf[token.start()]
                pos = token.end()
                if char == _QUOTE:
                    self._in_string = True
                elif char in _OPEN:
                    self._depth += 1
                else:
                    self._depth -= 1
                    if self._depth == 0:
                        if pos > self.max_size:
                            self._too_large(documents)
                        documents.append(bytes(buf[:pos]))
                        del buf[:pos]
                        pos = 0
        self._pos = pos
        if len(buf) > self.max_size:
            self._too_large(documents)
        return documents

    def _too_large(self, documents: list[bytes]) -> None:
        raise DocumentTooLarge(f"request larger than {self.max_size} bytes", documents)

    def finish(self) -> bytes | None:
        """End of stream: whatever non-blank data is left, as a (probably broken) document."""
        rest = bytes(self._buf).strip()
        self._buf.clear()
        self._pos = self._depth = 0
        self._in_string = False
        return rest or None
