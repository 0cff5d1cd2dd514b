"""Keepalives to registered bindings: one scheduler timer per round, one OPTIONS each.

Every ``natping_interval`` seconds each (NATed) binding of the table gets a request through
tm, sent to its received address, which keeps the NAT's mapping open. Any reply counts as
alive (even 404: someone answered); a binding that answered nothing for
``keepalive_timeout`` seconds is removed. A binding saved through another node (a location
table shared through Redis) is that node's to ping: its NAT mapping is towards that node.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from kamrouter.sip import Response

if TYPE_CHECKING:
    from kamrouter.modules.base import RouterServices
    from kamrouter.modules.nathelper.config import NathelperConfig
    from kamrouter.modules.usrloc import UsrlocModule
    from kamrouter.stats import Counter
    from kamrouter.timers import Timer

#: Replies tm makes up itself when nothing came back (timeout, cannot send).
_NO_ANSWER = frozenset({408, 477, 478, 503})


class Keepalive:
    def __init__(self, router: RouterServices, config: NathelperConfig,
                 usrloc: Callable[[], UsrlocModule]) -> None:
        self.router = router
        self.config = config
        self._usrloc = usrloc
        self._timer: Timer | None = None
        #: ruid -> wall time of its last reply (or of its first ping).
        self._last_heard: dict[str, float] = {}
        stats = router.stats
        self.sent: Counter = stats.counter("nathelper", "keepalives_sent")
        self.answered: Counter = stats.counter("nathelper", "keepalives_answered")
        self.failed: Counter = stats.counter("nathelper", "keepalives_failed")
        self.removed: Counter = stats.counter("nathelper", "bindings_removed")

    def start(self) -> None:
        if self.config.natping_interval:
            self._timer = self.router.scheduler.call_later(self.config.natping_interval,
                                                           self.round)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def round(self) -> None:
        cfg = self.config
        usrloc = self._usrloc()
        table = usrloc.table(cfg.table)
        now = table.clock()
        alive: set[str] = set()
        for aor, bindings in table.aors():
            for binding in bindings:
                if cfg.ping_nated_only and not binding.received:
                    continue
                socket = usrloc.own_socket(binding.socket)
                if binding.socket and socket is None:
                    continue  # registered through another node (Redis): that node pings it
                ruid = binding.ruid
                alive.add(ruid)
                heard = self._last_heard.setdefault(ruid, now)
                if cfg.keepalive_timeout and now - heard > cfg.keepalive_timeout:
                    table.delete(aor, binding)
                    self.removed.inc()
                    continue
                self.sent.inc()
                self.router.send_request(
                    cfg.sipping_method, binding.contact, from_uri=cfg.sipping_from,
                    dst_uri=binding.received or None, socket=socket,
                    timeout=float(cfg.natping_interval),
                    on_reply=partial(self._reply, ruid))
        for ruid in [r for r in self._last_heard if r not in alive]:
            del self._last_heard[ruid]  # gone or not pinged any more
        self._timer = self.router.scheduler.call_later(cfg.natping_interval, self.round)

    def _reply(self, ruid: str, status: int, reply: Response | None) -> None:
        if reply is None and status in _NO_ANSWER:
            self.failed.inc()
            return
        self.answered.inc()
        if ruid in self._last_heard:
            self._last_heard[ruid] = self._usrloc().clock()
