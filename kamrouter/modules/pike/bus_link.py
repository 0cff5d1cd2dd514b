"""pike's bans shared between worker processes through the state bus
(:mod:`kamrouter.modules.bus`, channel ``pike``): a ban a worker decides (a flood it counted,
a script's ``pike.ban``, ``pike.ban`` over RPC) or lifts is applied in every worker, as
``[ip, seconds, reason]`` (0 seconds: unban). Request counts stay per worker: the kernel
spreads one address's source ports over the workers, so each counts what it receives (a
source is detected by the worker that sees more than the limit, then banned everywhere).
"""
from __future__ import annotations

import math
from typing import Any

from kamrouter.modules.bus import StateBus
from kamrouter.modules.permissions.address import parse_ip
from kamrouter.modules.pike.table import PikeTable

CHANNEL = "pike"
#: The longest ban (as the RPC method allows), and reason, a message may carry.
MAX_SECONDS = 30 * 86400
MAX_REASON = 256


class PikeBus:
    def __init__(self, bus: StateBus, table: PikeTable) -> None:
        self.table = table
        table.on_ban = lambda ip, seconds, reason: bus.publish(CHANNEL, [ip, seconds, reason])
        bus.register(CHANNEL, self)

    def apply(self, payload: Any) -> None:
        ip, seconds, reason = _ban(payload)
        if seconds:
            self.table.apply_ban(ip, seconds, reason)
        else:
            self.table.apply_unban(ip)

    def dump(self) -> list[list[Any]]:
        self.table.expire()
        now = self.table.clock()
        return [[ip, math.ceil(ban.until - now), ban.reason]
                for ip, ban in self.table.bans.items()]

    def load(self, data: Any) -> None:
        bans = [_ban(entry) for entry in data]
        self.table.bans.clear()
        for ip, seconds, reason in bans:
            if seconds:
                self.table.apply_ban(ip, seconds, reason)


def _ban(entry: Any) -> tuple[str, float, str]:
    ip, seconds, reason = entry
    if not (isinstance(ip, str) and parse_ip(ip) is not None and isinstance(reason, str)
            and len(reason) <= MAX_REASON and type(seconds) in (int, float)
            and 0 <= seconds <= MAX_SECONDS):
        raise ValueError(f"not a ban: {entry!r}"[:200])
    return ip, seconds, reason
