"""All-byte mutation of SIP messages, JSON-RPC documents and evapi netstrings.

One :class:`Mutator` per run, seeded: the same seed gives the same cases. Mutations work on
bytes (any value 0-255, not only 7-bit text) and on the structure a parser relies on
(lines, the header/body separator, Content-Length, list commas, nesting), one to four per
case. Used by the in-process fuzz test and by ``tools/fuzz.py``.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

LOOPBACK = "127.0.0.1"

#: Header lines that exercise error paths and hostile next hops.
HOSTILE_LINES = [
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK\xff\xfe",
    b"Via: SIP/2.0/TCP [::1]:5060;rport;received=127.0.0.1",
    b"Via: SIP/2.0/UDP evil.invalid;maddr=127.0.0.1;ttl=300",
    b"Via: SIP/2.0/UDP 127.0.0.1:99999;branch=z9hG4bKx",
    b"v: SIP/2.0/UDP 127.0.0.1,SIP/2.0/UDP 127.0.0.1:1,,",
    b"Route: <sip:127.0.0.1:6379;transport=tcp;lr>",
    b"Route: <sip:127.0.0.1;lr;r2=on>, <sip:127.0.0.1:5060;lr;r2=on>",
    b"Route: <sip:[::1]:8448;transport=tcp>",
    b"Record-Route: <sip:127.0.0.1;lr>,<sip:\xff@127.0.0.1;lr>",
    b"Content-Length: 99999999999",
    b"Content-Length: -1",
    b"l: 5",
    b"Max-Forwards: 0",
    b"Max-Forwards: 256",
    b"CSeq: 4294967296 INVITE",
    b"Call-ID: \xff\x00\x80",
    b"From: \"\xc3\x28\" <sip:\xff@127.0.0.1>;tag=\xfe",
    b"To: <tel:+1\xff>;tag=",
    b"Contact: *",
    b"Contact: <sip:a@127.0.0.1>;expires=99999999999999999999",
    b"Expires: 4294967296",
    b"Proxy-Require: foo, \xff",
    b"Require: 100rel",
    b"Authorization: Digest username=\"\xff\", realm=\"x\", nonce=\"",
    b"Proxy-Authorization: Digest ,,,",
    b"Reason: SIP;cause=200;text=\"\xff\"",
    b"Content-Type: multipart/mixed;boundary=\xff",
    b"X-Folded: a\r\n b\r\n\tc",
    b"no colon at all",
    b": no name",
    b"Via:",
    b"\xff\xfe\xfd: \x00",
]

HOSTILE_TOKENS = [
    b"\xff", b"\x00", b"\x80\x80", b"\xc3\x28", b"\xed\xa0\x80", b"%00", b"%ff", b";", b",",
    b"<", b">", b"\"", b"\\", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b" ", b"\t", b":", b"@",
    b"[", b"]", b"sip:", b"tel:", b"sips:", b";lr", b";transport=tcp", b";maddr=127.0.0.1",
    b"127.0.0.1", b"[::1]", b"0.0.0.0", b"255.255.255.255", b"65536", b"-1",
    b"99999999999999999999", b"z9hG4bK", b"a" * 300, b"\xf0\x9f\x98\x80",
]

#: JSON fragments for RPC documents: deep nesting and huge numbers included.
HOSTILE_JSON = [
    b"[" * 2000 + b"]" * 2000, b"{\"a\":" * 500 + b"1" + b"}" * 500, b"9" * 5000, b"1e999",
    b"-0", b"\"\\ud800\"", b"\"\xff\"", b"null", b"true", b"[]", b"{}", b"\"\"", b",", b":",
]


class Mutator:
    """Seeded mutations; ``case(seed)`` returns one mutated copy of ``seed``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._sip_ops: list[Callable[[bytes], bytes]] = [
            self.flip_byte, self.set_byte, self.insert_bytes, self.delete_range,
            self.duplicate_line, self.delete_line, self.swap_lines, self.insert_hostile_line,
            self.insert_token, self.replace_token, self.truncate, self.drop_empty_line,
            self.fix_content_length, self.repeat_line, self.high_bytes,
        ]

    # -- SIP ---------------------------------------------------------------------------------
    def case(self, seed: bytes, others: Sequence[bytes] = ()) -> bytes:
        data = seed
        for _ in range(self.rng.randint(1, 4)):
            if others and self.rng.random() < 0.05:
                data = self.splice(data, self.rng.choice(others))
            else:
                data = self.rng.choice(self._sip_ops)(data)
        if self.rng.random() < 0.4:  # often framed right again: the mutation goes deeper
            data = self.fix_content_length(data)
        return data

    def _pos(self, data: bytes) -> int:
        return self.rng.randint(0, len(data)) if data else 0

    def flip_byte(self, data: bytes) -> bytes:
        if not data:
            return data
        i = self.rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ (1 << self.rng.randrange(8))]) + data[i + 1:]

    def set_byte(self, data: bytes) -> bytes:
        if not data:
            return data
        i = self.rng.randrange(len(data))
        return data[:i] + bytes([self.rng.randrange(256)]) + data[i + 1:]

    def high_bytes(self, data: bytes) -> bytes:
        """A run of bytes from 0x80-0xff (never valid as they stand in UTF-8 text)."""
        i = self._pos(data)
        run = bytes(self.rng.randrange(128, 256) for _ in range(self.rng.randint(1, 8)))
        return data[:i] + run + data[i:]

    def insert_bytes(self, data: bytes) -> bytes:
        i = self._pos(data)
        run = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 16)))
        return data[:i] + run + data[i:]

    def delete_range(self, data: bytes) -> bytes:
        i = self._pos(data)
        return data[:i] + data[i + self.rng.randint(1, 32):]

    def _lines(self, data: bytes) -> tuple[list[bytes], bytes]:
        head, sep, body = data.partition(b"\r\n\r\n")
        return head.split(b"\r\n"), sep + body

    def _join(self, lines: list[bytes], rest: bytes) -> bytes:
        return b"\r\n".join(lines) + rest

    def duplicate_line(self, data: bytes) -> bytes:
        lines, rest = self._lines(data)
        i = self.rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return self._join(lines, rest)

    def repeat_line(self, data: bytes) -> bytes:
        """One header line many times (count limits, quadratic paths)."""
        lines, rest = self._lines(data)
        i = self.rng.randrange(1, len(lines)) if len(lines) > 1 else 0
        lines[i:i + 1] = [lines[i]] * self.rng.choice((2, 20, 80, 300))
        return self._join(lines, rest)

    def delete_line(self, data: bytes) -> bytes:
        lines, rest = self._lines(data)
        if len(lines) > 1:
            del lines[self.rng.randrange(len(lines))]
        return self._join(lines, rest)

    def swap_lines(self, data: bytes) -> bytes:
        lines, rest = self._lines(data)
        i, j = self.rng.randrange(len(lines)), self.rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return self._join(lines, rest)

    def insert_hostile_line(self, data: bytes) -> bytes:
        lines, rest = self._lines(data)
        lines.insert(self.rng.randint(1, len(lines)), self.rng.choice(HOSTILE_LINES))
        return self._join(lines, rest)

    def insert_token(self, data: bytes) -> bytes:
        i = self._pos(data)
        return data[:i] + self.rng.choice(HOSTILE_TOKENS) + data[i:]

    def replace_token(self, data: bytes) -> bytes:
        """Replace the text between two delimiters by a hostile token."""
        if not data:
            return data
        i = self.rng.randrange(len(data))
        j = min(len(data), i + self.rng.randint(1, 12))
        return data[:i] + self.rng.choice(HOSTILE_TOKENS) + data[j:]

    def truncate(self, data: bytes) -> bytes:
        return data[: self._pos(data)]

    def drop_empty_line(self, data: bytes) -> bytes:
        head, sep, body = data.partition(b"\r\n\r\n")
        return head + self.rng.choice((b"", b"\r\n")) + (body if self.rng.random() < 0.5 else b"")

    @staticmethod
    def fix_content_length(data: bytes) -> bytes:
        """Make Content-Length match again, so the mutation reaches the layers behind."""
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return data
        lines = [line for line in head.split(b"\r\n")
                 if not line.lower().startswith((b"content-length:", b"l:"))]
        return b"\r\n".join(lines + [b"Content-Length: %d" % len(body)]) + sep + body

    def splice(self, data: bytes, other: bytes) -> bytes:
        return data[: self._pos(data)] + other[self._pos(other):]

    def chunks(self, data: bytes) -> list[bytes]:
        """``data`` cut at random places, as a stream may deliver it."""
        if len(data) < 2:
            return [data]
        cuts = sorted(self.rng.sample(range(1, len(data)), min(len(data) - 1,
                                                                 self.rng.randint(0, 4))))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]

    # -- JSON-RPC and evapi ---------------------------------------------------------------------
    def json_case(self, seed: bytes) -> bytes:
        data = seed
        for _ in range(self.rng.randint(1, 3)):
            choice = self.rng.random()
            if choice < 0.3:
                i = self._pos(data)
                data = data[:i] + self.rng.choice(HOSTILE_JSON) + data[i:]
            elif choice < 0.5:
                i = self._pos(data)
                data = data[:i] + self.rng.choice(HOSTILE_JSON) + data[i + self.rng.randint(1, 8):]
            else:
                data = self.rng.choice((self.flip_byte, self.set_byte, self.insert_bytes,
                                        self.delete_range, self.high_bytes, self.truncate))(data)
        return data

    def netstring_case(self, payload: bytes) -> bytes:
        """An evapi netstring (``LEN:payload,``) whose payload, length or framing is off."""
        body = self.json_case(payload)
        choice = self.rng.random()
        if choice < 0.6:
            return b"%d:%s," % (len(body), body)
        if choice < 0.7:
            return b"%d:%s," % (self.rng.choice((0, len(body) + 1, 10**9, 10**30)), body)
        if choice < 0.8:
            return b"%d:%s" % (len(body), body)  # no comma
        return self.insert_bytes(b"%d:%s," % (len(body), body))


# -- seeds ----------------------------------------------------------------------------------------
def sip_seeds(caller_port: int, router: str, sink: str) -> list[bytes]:
    """Well-formed messages of a call through the router at ``router`` (host:port), the
    callee being the sink (every next hop the router may pick is a loopback sink)."""
    body = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 9 RTP/AVP 0\r\n")
    via = f"Via: SIP/2.0/UDP {LOOPBACK}:{caller_port};branch=z9hG4bKfz{{n}};rport"
    common = (f"From: \"Caller\" <sip:caller@{LOOPBACK}>;tag=fz1\r\n"
              f"Call-ID: fuzz-{{n}}@{LOOPBACK}\r\nMax-Forwards: 70\r\n")

    def request(method: str, ruri: str, extra: str = "", payload: bytes = b"",
                to_tag: str = "", cseq: int = 1) -> bytes:
        to = f"To: <sip:callee@{sink}>{';tag=' + to_tag if to_tag else ''}\r\n"
        head = (f"{method} {ruri} SIP/2.0\r\n{via}\r\n{common}{to}CSeq: {cseq} {method}\r\n"
                f"Contact: <sip:caller@{LOOPBACK}:{caller_port}>\r\n{extra}"
                f"Content-Length: {len(payload)}\r\n\r\n")
        return head.encode() + payload

    def reply(status: int, reason: str, method: str = "INVITE") -> bytes:
        return (f"SIP/2.0 {status} {reason}\r\n"
                f"Via: SIP/2.0/UDP {router};branch=z9hG4bKfzr{{n}}\r\n{via}\r\n"
                f"Record-Route: <sip:{router};lr>\r\n{common}"
                f"To: <sip:callee@{sink}>;tag=callee\r\nCSeq: 1 {method}\r\n"
                f"Contact: <sip:callee@{sink}>\r\nContent-Length: 0\r\n\r\n").encode()

    route = f"Route: <sip:{router};lr>\r\n"
    return [
        request("INVITE", f"sip:callee@{sink}", "Content-Type: application/sdp\r\n", body),
        request("OPTIONS", f"sip:{router}"),
        request("REGISTER", f"sip:{router}", "Expires: 3600\r\n"),
        request("MESSAGE", f"sip:callee@{sink}", "Content-Type: text/plain\r\n", b"hello"),
        request("BYE", f"sip:callee@{sink}", route, to_tag="callee", cseq=2),
        request("ACK", f"sip:callee@{sink}", route, to_tag="callee"),
        request("CANCEL", f"sip:callee@{sink}"),
        request("SUBSCRIBE", f"sip:callee@{sink}", "Event: presence\r\nAccept: a/b, c/d\r\n"),
        request("INFO", f"sip:callee@{sink};transport=tcp", route, to_tag="callee", cseq=3),
        reply(100, "Trying"), reply(180, "Ringing"), reply(200, "OK"),
        reply(486, "Busy Here"), reply(200, "OK", "BYE"),
    ]


def numbered(seed: bytes, n: int) -> bytes:
    """The seed with its ``{n}`` placeholders (Call-ID, branches) set to ``n``."""
    return seed.replace(b"{n}", b"%d" % n)


RPC_SEEDS = [json.dumps(doc).encode() for doc in (
    {"jsonrpc": "2.0", "method": "core.version", "id": 1},
    {"jsonrpc": "2.0", "method": "core.uptime", "id": "x"},
    {"jsonrpc": "2.0", "method": "stats.get_statistics", "params": ["all"], "id": 2},
    {"jsonrpc": "2.0", "method": "system.listMethods", "id": 3},
    {"jsonrpc": "2.0", "method": "core.echo", "params": [1, "a", [1, {"b": None}]], "id": 4},
    [{"jsonrpc": "2.0", "method": "core.version", "id": 5}, {"jsonrpc": "2.0", "method": "x"}],
)]

EVAPI_SEEDS = [json.dumps(doc).encode() for doc in (
    {"event": "sip-routing-answer", "id": "1", "routing": "serial", "routes": []},
    {"tag": "fuzz", "data": [1, 2, {"x": "y"}]},
    {"id": 7, "reply": {"code": 404, "reason": "No"}},
)]


def ws_upgrade(host: str, origin: str | None = None) -> bytes:
    """A browser's HTTP upgrade to SIP over WebSocket (RFC 7118)."""
    lines = ["GET / HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: sip"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_frame(payload: bytes, rng: random.Random, opcode: int = 1, final: bool = True) -> bytes:
    """One masked client frame (RFC 6455 §5.2) carrying ``payload``."""
    size = len(payload)
    head = bytes([(0x80 if final else 0) | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    key = rng.randbytes(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

