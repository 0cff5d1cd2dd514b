"""The one exception the SIP library raises for malformed input."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Message


class SipParseError(ValueError):
    """Malformed SIP input, with the status and reason phrase to answer with.

    ``message`` holds whatever could be salvaged (start line and header index) so a proxy can
    still build a reply; ``headers`` lists header fields the reply should carry (for example
    ``Unsupported`` for a 420).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        message: Message | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message
        self.headers: list[tuple[str, str]] = headers or []

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class SipLimitError(SipParseError):
    """Input refused because it exceeds a configured limit (size, header or value counts),
    not because it is malformed."""


def bad(what: str, detail: str) -> SipParseError:
    """A 400 whose reason names the header and the problem: ``Bad CSeq: number out of range``."""
    return SipParseError(400, f"Bad {what}: {detail}")
