"""Building an OPTIONS request and reading the response (sans-IO, standard library only)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    """One OPTIONS transaction's identity."""

    ruri: str
    branch: str
    call_id: str
    from_tag: str

    @classmethod
    def new(cls, ruri: str) -> Probe:
        return cls(ruri, "z9hG4bK-sipcheck-" + secrets.token_hex(8),
                   secrets.token_hex(12) + "@kamcli", secrets.token_hex(6))

    def request(self, local_host: str, local_port: int, user_agent: str) -> bytes:
        host = f"[{local_host}]" if ":" in local_host else local_host
        lines = [
            f"OPTIONS {self.ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{local_port};branch={self.branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:sipcheck@{host}>;tag={self.from_tag}",
            f"To: <{self.ruri}>",
            f"Call-ID: {self.call_id}",
            "CSeq: 1 OPTIONS",
            f"Contact: <sip:sipcheck@{host}:{local_port}>",
            "Accept: application/sdp",
            f"User-Agent: {user_agent}",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]

    def answers(self, probe: Probe) -> bool:
        via = self.headers.get("via", "")
        return self.headers.get("call-id") == probe.call_id and f"branch={probe.branch}" in via


_COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to", "l": "content-length"}


def parse_response(data: bytes) -> Response | None:
    """The status line and (first) header values of a SIP response; None if it is not one."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if version != "SIP/2.0" or not (len(code) == 3 and code.isdigit()):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            headers.setdefault(_COMPACT.get(key, key), value.strip())
    return Response(int(code), reason.strip(), headers)
