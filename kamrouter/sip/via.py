"""Via header values (RFC 3261 §20.42, RFC 3581 rport, RFC 5118 IPv6)."""
from __future__ import annotations

import re

from .errors import bad
from .headers import split_commas
from .params import PLAIN_PARAMS, parse_params, split_plain_params

MAGIC_COOKIE = "z9hG4bK"
_T = r"[A-Za-z0-9.!%*_+`'~\-]+"
_HOST = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9\-_.]*)"
_VIA = re.compile(
    rf"({_T})[ \t]*/[ \t]*({_T})[ \t]*/[ \t]*({_T})[ \t]+{_HOST}"
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*(;.*)?\Z",
    re.S,
)
# The shape nearly every Via has (``SIP/2.0/UDP host:port;branch=...;rport``, no whitespace
# or quotes): one match validates all of it, parameters included.
_PLAIN_VIA = re.compile(rf"SIP/2\.0/([A-Z]+) {_HOST}(?::([0-9]{{1,5}}))?({PLAIN_PARAMS})\Z")


class Via:
    """One Via value. Immutable; ``str()`` is the text it was parsed from."""

    __slots__ = ("protocol", "transport", "host", "port", "params", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        m = _PLAIN_VIA.match(text)
        if m is not None:
            self.transport, self.host, port, param_text = m.groups()
            self.protocol = "SIP/2.0"
            self.port = _port(port)
            self.params: dict[str, str | None] = split_plain_params(param_text) if param_text else {}
        else:
            m = _VIA.match(text)
            if m is None:
                raise bad("Via", f"malformed value {text[:60]!r}")
            name, version, transport, self.host, port, param_text = m.groups()
            self.protocol = f"{name}/{version}".upper()
            self.transport = transport.upper()
            self.port = _port(port)
            self.params = parse_params(param_text, "Via") if param_text else {}
        params = self.params
        if not params:
            return
        ttl = params.get("ttl")
        if ttl is not None and not (len(ttl.lstrip("0")) <= 3 and ttl.isdigit() and ttl.isascii() and int(ttl) <= 255):
            raise bad("Via", f"bad ttl {ttl[:20]!r}")
        rport = params.get("rport")
        if rport is not None and not (len(rport.lstrip("0")) <= 5 and rport.isdigit() and rport.isascii() and int(rport) <= 65535):
            raise bad("Via", f"bad rport {rport[:20]!r}")

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def is_rfc3261(self) -> bool:
        """True when the branch carries the magic cookie and something after it (§8.1.1.7);
        otherwise transactions fall back to RFC 2543 matching (RFC 4475 §3.2.1)."""
        branch = self.params.get("branch")
        return branch is not None and len(branch) > 7 and branch.startswith(MAGIC_COOKIE)

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def has_rport(self) -> bool:
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        value = self.params.get("ttl")
        return int(value) if value is not None else None

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Via({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Via) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    if len(text.lstrip("0")) > 5 or (number := int(text)) > 65535:
        raise bad("Via", f"port out of range: {text}")
    return number


def parse_via_list(value: str, known: Via | None = None) -> list[Via]:
    """All Via values of one header line; an empty item is an error. ``known`` (the top Via,
    parsed already) is reused for the item with its text."""
    result = []
    for item in split_commas(value):
        if not item:
            raise bad("Via", "empty value in list")
        result.append(known if known is not None and item == known._text else Via(item))
    return result
