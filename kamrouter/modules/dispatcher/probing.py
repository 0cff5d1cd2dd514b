"""Health probing: one timer on the router's scheduler sends a round of OPTIONS every
``ping_interval`` seconds through tm (``router.send_request``) and feeds each final reply to
the state machine. No task per target or per probe: a round is a timer callback, a reply a
tm callback.

Who is probed (``probing_mode``), never a disabled, NOPING or NODNSARES target:

| mode | probed | on a good reply | on a failure |
|------|--------|-----------------|--------------|
| 0 | targets with the probing flag | active, probing flag dropped | trying+probing (inactive at the threshold) |
| 1 | every target | active+probing | trying+probing |
| 2 | inactive targets with the probing flag | active, probing flag dropped | stays inactive+probing |
| 3 | targets with the probing flag | active+probing | trying+probing |

A good reply is a 2xx or a code listed in ``ping_reply_codes``. No reply within
``ping_timeout`` is tm's local 408 and a failure (unless 408 is listed). With threshold
``k`` a target that stops answering is inactive at most ``ping_interval * k + ping_timeout``
after its last good reply. Replies are tied to the exact target object (not its URI), so two
entries with one URI on different sockets are judged separately, and a reply for a target
removed or disabled meanwhile changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from kamrouter.modules.dispatcher.flags import (
    DISABLED, INACTIVE, NODNSARES, NOPING, PROBING, TRYING,
)
from kamrouter.modules.dispatcher.health import Origin
from kamrouter.timers import Scheduler, Timer

if TYPE_CHECKING:  # the core imports this module's config helpers
    from kamrouter.modules.dispatcher.core import Dispatcher
    from kamrouter.modules.dispatcher.model import Destination

_LOCAL_REASONS = {408: "Request Timeout", 477: "Unfortunately error on sending to next hop",
                  500: "Sending keepalive failed", 503: "Service Unavailable"}


def parse_reply_codes(text: str) -> tuple[frozenset[int], frozenset[int]]:
    """``"code=404;class=4"`` -> ({404}, {4}); raises ValueError naming the bad item."""
    codes: set[int] = set()
    classes: set[int] = set()
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        try:
            number = int(value)
        except ValueError:
            number = -1
        if not sep or name not in ("code", "class"):
            raise ValueError(f"{item!r}: expected code=NNN or class=N")
        if name == "code" and 100 <= number <= 699:
            codes.add(number)
        elif name == "class" and 1 <= number <= 6:
            classes.add(number)
        else:
            raise ValueError(f"{item!r}: {name} out of range")
    return frozenset(codes), frozenset(classes)


class SendRequest(Protocol):
    def __call__(self, method: str, ruri: str, *, from_uri: str, to_uri: str | None = None,
                 dst_uri: str | None = None, socket: str | None = None,
                 headers: Any = (), timeout: float | None = None,
                 on_reply: Callable[[int, Any], None]) -> None: ...


class Prober:
    def __init__(self, dispatcher: Dispatcher, scheduler: Scheduler,
                 send_request: SendRequest) -> None:
        config = dispatcher.config
        self.dispatcher = dispatcher
        self.scheduler = scheduler
        self.send_request = send_request
        self.mode = config.probing_mode
        self.interval = config.ping_interval
        self._codes, self._classes = parse_reply_codes(config.ping_reply_codes)
        self._timer: Timer | None = None

    def start(self) -> None:
        """First round now, then every ``ping_interval`` seconds (nothing when it is 0)."""
        if self.interval > 0 and self._timer is None:
            self._timer = self.scheduler.call_later(0, self._round)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def should_probe(self, flags: int) -> bool:
        if flags & (DISABLED | NOPING | NODNSARES):
            return False
        if self.mode == 1:
            return True
        if self.mode == 2:
            return flags & (INACTIVE | PROBING) == INACTIVE | PROBING
        return bool(flags & PROBING)

    def is_good_reply(self, status: int) -> bool:
        return 200 <= status < 300 or status in self._codes or status // 100 in self._classes

    def _round(self) -> None:
        self._timer = self.scheduler.call_later(self.interval, self._round)
        if not self.dispatcher.ping_active:
            return
        for dest in self.dispatcher.list.destinations():
            if self.should_probe(dest.health.flags):
                self.probe(dest)

    def probe(self, dest: Destination) -> None:
        config = self.dispatcher.config
        attrs = dest.attrs
        sent_at = self.scheduler.clock()
        dest.health.probes_sent += 1
        self.dispatcher.counters_for(dest.setid).probes_sent.value += 1
        try:
            self.send_request(
                config.ping_method, dest.uri,
                from_uri=attrs.ping_from or config.ping_from, to_uri=dest.uri,
                dst_uri=attrs.obproxy or config.outbound_proxy or None,
                socket=attrs.socket or config.default_socket or None,
                timeout=config.ping_timeout,
                on_reply=lambda status, response: self.on_reply(dest, sent_at, status, response),
            )
        except Exception as exc:  # noqa: BLE001 - a probe that cannot be sent is a failure
            self.on_reply(dest, sent_at, 500, None, f"Sending keepalive failed: {exc}")

    def on_reply(self, dest: Destination, sent_at: float, status: int, response: Any,
                 reason: str | None = None) -> None:
        """tm's final reply for one probe (``response`` None: generated locally)."""
        health = dest.health
        if health.retired:
            return
        if reason is None:
            reason = response.reason if response is not None else _LOCAL_REASONS.get(status, "")
        health.last_probe_at = self.dispatcher.wall_clock()
        health.last_probe_code = status
        health.last_probe_reason = reason
        if response is not None:
            rtt_ms = (self.scheduler.clock() - sent_at) * 1000.0
            health.latency.add(rtt_ms, self.dispatcher.config.latency_alpha)
        elif status == 408:
            health.latency.add_timeout()
        if health.flags & DISABLED or (self.mode == 3 and not health.flags & PROBING):
            return
        if self.is_good_reply(status):
            keep_probing = self.mode in (1, 3)
            requested = PROBING if keep_probing else 0
        else:
            health.probes_failed += 1
            self.dispatcher.counters_for(dest.setid).probes_failed.value += 1
            requested = TRYING | PROBING
        self.dispatcher.change_state(dest, requested, Origin.PING, status, reason)
