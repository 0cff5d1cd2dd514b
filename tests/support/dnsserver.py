"""A small authoritative DNS server on 127.0.0.1 for the tests (the traffic rules: DNS tests
use a resolver they start themselves). Answers from a dict, counts the queries it got."""
from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterable

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .ports import LOOPBACK

#: (name, type) -> (ttl, [rdata text, ...]); names without the trailing dot.
Zone = dict[tuple[str, str], tuple[int, list[str]]]


class DnsServer:
    def __init__(self, zone: Zone | None = None) -> None:
        self.zone: Zone = dict(zone or {})
        self.queries: Counter[tuple[str, str]] = Counter()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def set(self, name: str, rdtype: str, records: Iterable[str], ttl: int = 300) -> None:
        self.zone[(name.lower(), rdtype)] = (ttl, list(records))

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - a test server ignores garbage
                continue
            self.sock.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries[(name, rdtype)] += 1
        entry = self.zone.get((name, rdtype))
        if entry is None:
            if not any(key[0] == name for key in self.zone):
                reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply
        ttl, records = entry
        reply.answer.append(dns.rrset.from_text_list(question.name, ttl, dns.rdataclass.IN,
                                                     question.rdtype, records))
        return reply
