"""Call load for algorithm 10 (Kamailio's ds_load_*): which target each call went to.

A call counts on its target from selection until ``load_unset`` (failure route), a BYE or
CANCEL passing ``load_update``, the end of its INVITE transaction without a 2xx (the module
watches transactions end, so a script needs no ``load_unset``), or expiry: ``init_expire``
seconds while unanswered, ``expire`` seconds after the 2xx (for calls whose BYE never
passes through).
"""
from __future__ import annotations

from kamrouter.modules.dispatcher.health import Health


class _Call:
    __slots__ = ("health", "owner", "deadline")

    def __init__(self, health: Health, owner: object, deadline: float) -> None:
        self.health = health
        self.owner = owner
        self.deadline = deadline


class CallLoad:
    def __init__(self, expire: float, init_expire: float) -> None:
        self.expire = expire
        self.init_expire = init_expire
        self._calls: dict[str, _Call] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def assign(self, call_id: str, health: Health, now: float, owner: object) -> None:
        """Count ``call_id`` on ``health`` for ``owner``, the selection that chose it
        (moving the call there if it counted elsewhere)."""
        call = self._calls.get(call_id)
        if call is not None:
            call.health.load -= 1
            call.health = health
            call.owner = owner
        else:
            self._calls[call_id] = _Call(health, owner, now + self.init_expire)
        health.load += 1

    def confirm(self, call_id: str, now: float) -> bool:
        """The call was answered: keep it for ``expire`` seconds from now."""
        call = self._calls.get(call_id)
        if call is None:
            return False
        call.deadline = now + self.expire
        return True

    def release(self, call_id: str, owner: object | None = None) -> bool:
        """Stop counting the call; with ``owner``, only while that selection still holds it
        (a later INVITE of the same Call-ID, e.g. after an auth challenge, keeps its own)."""
        call = self._calls.get(call_id)
        if call is None or (owner is not None and call.owner is not owner):
            return False
        del self._calls[call_id]
        call.health.load -= 1
        return True

    def expire_due(self, now: float) -> int:
        """Drop calls past their deadline; returns how many."""
        due = [call_id for call_id, call in self._calls.items() if call.deadline <= now]
        for call_id in due:
            self.release(call_id)
        return len(due)
