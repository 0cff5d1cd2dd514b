"""The one retransmission timer of tm: the same bytes again after T1, 2*T1, 4*T1 … capped at
T2 (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1), until its owner stops it.

Used for requests of a branch over UDP, a branch's CANCEL, and a server INVITE's final
non-2xx waiting for its ACK. The owner stops it on every change of state that ends the need.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from kamrouter.net import Endpoint

if TYPE_CHECKING:
    from kamrouter.timers import Timer
    from kamrouter.tm.layer import TransactionLayer


class Retransmission:
    """Resends ``data`` to ``dest`` from ``local`` on the doubling schedule.

    It is its timer's callback itself: no bound method per arming (64 bytes each)."""

    __slots__ = ("_layer", "_data", "_dest", "_local", "_interval", "_timer")

    def __init__(self, layer: TransactionLayer, data: bytes, dest: Endpoint,
                 local: Endpoint | None) -> None:
        self._layer = layer
        self._data = data
        self._dest = dest
        self._local = local
        self._interval = layer.params.t1
        self._timer: Timer | None = layer.scheduler.call_later(self._interval, self)

    def __call__(self) -> None:
        """The timer fired: send again, and arm the next one."""
        layer = self._layer
        layer.send(self._data, self._dest, self._local, None)
        self._interval = min(self._interval * 2, layer.params.t2)
        self._timer = layer.scheduler.call_later(self._interval, self)

    def at_t2(self) -> None:
        """From now on every T2 (a non-INVITE request that got a provisional, §17.1.2.2)."""
        self._interval = self._layer.params.t2

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
