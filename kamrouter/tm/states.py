"""Everything that changes tm's state machines lives in this file: the states, and one table
per machine of the allowed changes, ``(state, event) -> new state``.

A state changes only by looking ``(state, event)`` up in its machine's table (one ``_to``
method per machine in :mod:`kamrouter.tm.transaction`); an event the table does not list for
the current state is a bug and raises :class:`TransitionError`.
The pictures below are rendered from the tables (``tests/tm/test_states.py`` checks that they
are equal), so they cannot drift from the code.

Server transaction (the request we received)::

    PROCEEDING --2xx to INVITE--> ACCEPTED
    PROCEEDING --final >=300 to INVITE--> COMPLETED
    PROCEEDING --final to non-INVITE--> COMPLETED
    PROCEEDING --final of our own request--> COMPLETED
    PROCEEDING --dropped by the script--> TERMINATED
    COMPLETED --ACK--> CONFIRMED
    COMPLETED --timer_b--> TERMINATED
    COMPLETED --wait_timer--> TERMINATED
    CONFIRMED --T4--> TERMINATED
    ACCEPTED --wait_timer--> TERMINATED

``COMPLETED`` of an INVITE retransmits the final (T1 doubling up to T2, over UDP) until the ACK
or ``timer_b`` (64*T1); after the ACK, ``T4`` absorbs ACK retransmissions (0 over streams).
``wait_timer`` (Kamailio's ``wt_timer``) replaces RFC 3261 timers I, J and L. A transaction
whose branches still owe a final (a CANCEL's 487) waits another ``wait_timer`` in place.

Client transaction (one branch)::

    CALLING --1xx--> PROCEEDING
    PROCEEDING --1xx--> PROCEEDING
    CALLING --2xx to INVITE--> ACCEPTED
    PROCEEDING --2xx to INVITE--> ACCEPTED
    CALLING --final--> COMPLETED
    PROCEEDING --final--> COMPLETED
    CALLING --local final--> COMPLETED
    PROCEEDING --local final--> COMPLETED
    COMPLETED --2xx after local final--> ACCEPTED
    COMPLETED --released--> TERMINATED
    ACCEPTED --released--> TERMINATED

``final`` is a reply >= 300, or any final to a non-INVITE (an INVITE's gets our ACK);
``local final`` is one we make up: 408 when the fr timer fires, 477 when the transport cannot
send, 478/503 when the next hop cannot be reached. ``released``: ``wait_timer`` after the final
(to absorb retransmitted finals), or the end of the transaction. A branch's CANCEL is a small
machine of its own beside this one (:class:`CancelState`).
"""
from __future__ import annotations

from enum import Enum
from typing import TypeVar


class _State(Enum):
    # Members are singletons compared by identity: hash them the C way, not Enum's Python
    # __hash__ (every transition hashes one in its table lookup).
    __hash__ = object.__hash__


class TxnState(_State):
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class BranchState(_State):
    CALLING = "calling"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class CancelState(Enum):
    """A branch's CANCEL (RFC 3261 §9.1): not asked; asked before any provisional (sent on
    the first 1xx); sent (retransmitted until answered or the branch is released)."""

    NONE = "none"
    PENDING = "pending"
    SENT = "sent"


_S = TypeVar("_S", TxnState, BranchState)


class TransitionError(AssertionError):
    """An event the state table does not allow in the current state (a bug in tm)."""


class StateTable(dict[tuple[_S, str], _S]):
    """``table[state, event]`` is the next state; a pair it does not list raises
    :class:`TransitionError` (a plain dict lookup on the hot path, no call)."""

    def __missing__(self, key: tuple[_S, str]) -> _S:
        state, event = key
        raise TransitionError(f"{event!r} is not allowed in state {state.name}")


_T, _B = TxnState, BranchState

SERVER: StateTable[TxnState] = StateTable({
    (_T.PROCEEDING, "2xx to INVITE"): _T.ACCEPTED,
    (_T.PROCEEDING, "final >=300 to INVITE"): _T.COMPLETED,
    (_T.PROCEEDING, "final to non-INVITE"): _T.COMPLETED,
    (_T.PROCEEDING, "final of our own request"): _T.COMPLETED,
    (_T.PROCEEDING, "dropped by the script"): _T.TERMINATED,
    (_T.COMPLETED, "ACK"): _T.CONFIRMED,
    (_T.COMPLETED, "timer_b"): _T.TERMINATED,
    (_T.COMPLETED, "wait_timer"): _T.TERMINATED,
    (_T.CONFIRMED, "T4"): _T.TERMINATED,
    (_T.ACCEPTED, "wait_timer"): _T.TERMINATED,
})

CLIENT: StateTable[BranchState] = StateTable({
    (_B.CALLING, "1xx"): _B.PROCEEDING,
    (_B.PROCEEDING, "1xx"): _B.PROCEEDING,
    (_B.CALLING, "2xx to INVITE"): _B.ACCEPTED,
    (_B.PROCEEDING, "2xx to INVITE"): _B.ACCEPTED,
    (_B.CALLING, "final"): _B.COMPLETED,
    (_B.PROCEEDING, "final"): _B.COMPLETED,
    (_B.CALLING, "local final"): _B.COMPLETED,
    (_B.PROCEEDING, "local final"): _B.COMPLETED,
    (_B.COMPLETED, "2xx after local final"): _B.ACCEPTED,
    (_B.COMPLETED, "released"): _B.TERMINATED,
    (_B.ACCEPTED, "released"): _B.TERMINATED,
})


def render(table: StateTable[_S]) -> str:
    """The table as the lines of the module docstring's pictures."""
    return "\n".join(f"{state.name} --{event}--> {new.name}"
                     for (state, event), new in table.items())
