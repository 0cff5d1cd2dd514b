"""Call load for algorithm 10 (Kamailio's ds_load_*): which target each call went to.

A call counts on its target from selection until ``load_unset`` (failure route), a BYE or
CANCEL passing ``load_update``, the end of its INVITE transaction without a 2xx (the module
watches transactions end, so a script needs no ``load_unset``), or expiry: ``init_expire``
seconds while unanswered, ``expire`` seconds after the 2xx (for calls whose BYE never
passes through).

With worker processes every worker holds the whole router's table (Kamailio keeps it in
shared memory): each local change is told to :attr:`CallLoad.on_change` (the state bus,
:mod:`.load_bus`) and applied in the others with the ``apply_*`` methods, so a selection
anywhere sees every worker's calls and a BYE that reaches another worker than its INVITE
still ends the call. Deadlines are on the machine's monotonic clock, the same in every
worker: each expires the same calls by itself, with no message.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kamrouter.modules.dispatcher.model import Destination

#: Owner tokens end in the worker's index (below this), so they are unique in the router.
_WORKERS_BITS = 256


class _Call:
    __slots__ = ("dest", "owner", "deadline")

    def __init__(self, dest: Destination, owner: int, deadline: float) -> None:
        self.dest = dest
        self.owner = owner
        self.deadline = deadline


class CallLoad:
    def __init__(self, expire: float, init_expire: float) -> None:
        self.expire = expire
        self.init_expire = init_expire
        self._calls: dict[str, _Call] = {}
        self._last_owner = 0
        #: The worker's index (the low part of its owner tokens).
        self.worker = 0
        #: Told of each local change as ``("assign", call id, target, owner, deadline)``,
        #: ``("confirm", call id, deadline)`` or ``("release", call id, owner or None)``.
        self.on_change: Callable[[tuple[Any, ...]], None] | None = None

    def __len__(self) -> int:
        return len(self._calls)

    def items(self) -> Iterator[tuple[str, Destination, int, float]]:
        """(call id, target, owner, deadline) of every call counted."""
        for call_id, call in self._calls.items():
            yield call_id, call.dest, call.owner, call.deadline

    def assign(self, call_id: str, dest: Destination, now: float) -> int:
        """Count ``call_id`` on ``dest`` (moving the call there if it counted elsewhere);
        returns the owner token its selection keeps for :meth:`release`."""
        self._last_owner += 1
        owner = self._last_owner * _WORKERS_BITS + self.worker
        deadline = now + self.init_expire
        self.apply_assign(call_id, dest, owner, deadline)
        self._tell(("assign", call_id, dest, owner, deadline))
        return owner

    def confirm(self, call_id: str, now: float) -> bool:
        """The call was answered: keep it for ``expire`` seconds from now."""
        deadline = now + self.expire
        if not self.apply_confirm(call_id, deadline):
            return False
        self._tell(("confirm", call_id, deadline))
        return True

    def release(self, call_id: str, owner: int | None = None) -> bool:
        """Stop counting the call; with ``owner``, only while that selection still holds it
        (a later INVITE of the same Call-ID, e.g. after an auth challenge, keeps its own)."""
        if not self.apply_release(call_id, owner):
            return False
        self._tell(("release", call_id, owner))
        return True

    def expire_due(self, now: float) -> int:
        """Drop calls past their deadline; returns how many."""
        due = [call_id for call_id, call in self._calls.items() if call.deadline <= now]
        for call_id in due:
            self.apply_release(call_id, None)
        return len(due)

    def _tell(self, change: tuple[Any, ...]) -> None:
        if self.on_change is not None:
            self.on_change(change)

    # -- changes made in another worker (and the local ones, underneath) --------------------
    def apply_assign(self, call_id: str, dest: Destination, owner: int,
                     deadline: float) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.dest.health.load -= 1
            call.dest, call.owner, call.deadline = dest, owner, deadline
        else:
            self._calls[call_id] = _Call(dest, owner, deadline)
        dest.health.load += 1

    def apply_confirm(self, call_id: str, deadline: float) -> bool:
        call = self._calls.get(call_id)
        if call is None:
            return False
        call.deadline = deadline
        return True

    def apply_release(self, call_id: str, owner: int | None) -> bool:
        call = self._calls.get(call_id)
        if call is None or (owner is not None and call.owner != owner):
            return False
        del self._calls[call_id]
        call.dest.health.load -= 1
        return True

    def clear(self) -> None:
        for call in self._calls.values():
            call.dest.health.load -= 1
        self._calls.clear()
