"""The destination blocklist shared between worker processes through the state bus
(:mod:`kamrouter.modules.bus`, channel ``dst_blocklist``): a destination one worker found
dead (a timeout, a send error, a 503 with DNS failover) is skipped by every worker until
its entry expires, as ``[proto, host, port, seconds, reason]``. The RPC changes
(``dst_blocklist.*``) run in every worker already; an add is published too, harmlessly.
"""
from __future__ import annotations

from typing import Any

from kamrouter.dns.blocklist import Blocklist
from kamrouter.modules.bus import StateBus
from kamrouter.net import Endpoint

CHANNEL = "dst_blocklist"
PROTOCOLS = frozenset(("udp", "tcp", "tls", "ws", "wss"))
#: The longest entry and reason a message may carry.
MAX_SECONDS = 86400.0
MAX_REASON = 128


class BlocklistBus:
    def __init__(self, bus: StateBus, blocklist: Blocklist) -> None:
        self.blocklist = blocklist
        blocklist.on_added = lambda dest, seconds, reason: bus.publish(
            CHANNEL, [dest.proto, dest.host, dest.port, seconds, reason])
        bus.register(CHANNEL, self)

    def apply(self, payload: Any) -> None:
        proto, host, port, seconds, reason = payload
        if not (proto in PROTOCOLS and isinstance(host, str) and 0 < len(host) <= 255
                and type(port) is int and 0 < port < 65536
                and type(seconds) in (int, float) and 0 < seconds <= MAX_SECONDS
                and isinstance(reason, str) and len(reason) <= MAX_REASON):
            raise ValueError(f"not a blocklist entry: {payload!r}"[:200])
        self.blocklist.apply(Endpoint(proto, host, port), reason, float(seconds))

    def dump(self) -> list[list[Any]]:
        return [[dest.proto, dest.host, dest.port, seconds, reason[:MAX_REASON]]
                for dest, seconds, reason in self.blocklist.view() if seconds > 0]

    def load(self, data: Any) -> None:
        self.blocklist.clear()
        for entry in data:
            self.apply(entry)
