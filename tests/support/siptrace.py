"""sipp's message log (``-trace_msg``) read back as messages a test can inspect."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SEPARATOR = re.compile(r"^-{20,} .*$", re.MULTILINE)
_HEADLINE = re.compile(r"^(?P<transport>\w+) message (?P<direction>received|sent)\b")
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "l": "content-length"}


@dataclass(frozen=True)
class TracedMessage:
    """One SIP message as sipp sent or received it."""

    direction: str  # "sent" | "received"
    transport: str  # "UDP" | "TCP"
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str | None:
        """Request method, or None for a response."""
        word = self.first_line.split(" ", 1)[0]
        return None if word.startswith("SIP/") else word

    @property
    def status(self) -> int | None:
        """Response status, or None for a request."""
        parts = self.first_line.split(" ", 2)
        return int(parts[1]) if parts[0].startswith("SIP/") else None

    @property
    def cseq_method(self) -> str:
        """The method named in CSeq (tells the 200 for an INVITE from the 200 for a BYE)."""
        cseq = self.headers("CSeq")
        return cseq[0].split()[-1] if cseq else ""

    def headers(self, name: str) -> list[str]:
        """Every value of header ``name``: all its lines, comma lists split (not in <> or "")."""
        wanted = name.lower()
        values: list[str] = []
        for line in self.text.split("\n\n", 1)[0].split("\n")[1:]:
            key, sep, value = line.partition(":")
            key = key.strip().lower()
            if sep and _COMPACT.get(key, key) == wanted:
                values.extend(_split_list(value.strip()))
        return values

    def describe(self) -> str:
        return f"{self.transport} {self.direction}:\n{self.text}"


def read_message_log(path: Path) -> list[TracedMessage]:
    """Parse a sipp ``-message_file``; a missing file (nothing traced) reads as no messages."""
    if not path.exists():
        return []
    messages = []
    for chunk in _SEPARATOR.split(path.read_text(errors="replace")):
        chunk = chunk.replace("\r\n", "\n").strip("\n")
        headline, _, body = chunk.partition("\n")
        match = _HEADLINE.match(headline)
        if match:
            messages.append(TracedMessage(match["direction"], match["transport"], body.strip("\n")))
    return messages


def _split_list(value: str) -> list[str]:
    items, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return [item for item in items if item]
