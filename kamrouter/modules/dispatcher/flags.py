"""Destination flag bits (Kamailio's values) and the two-letter state shown by RPC.

The list file's flags column and the runtime state share one integer, as in Kamailio:
INACTIVE / TRYING / DISABLED are the state, PROBING says "ping this target", NODNSARES and
NOPING are options fixed by the list.
"""
from __future__ import annotations

INACTIVE = 1
TRYING = 2
DISABLED = 4
PROBING = 8
NODNSARES = 16
NOPING = 32

#: The bits that make up the state (everything a state change may rewrite).
STATE_MASK = INACTIVE | TRYING | DISABLED | PROBING
#: A target with any of these bits is never selected.
UNUSABLE = INACTIVE | DISABLED

_STATE_LETTERS = {"a": 0, "i": INACTIVE, "t": TRYING, "d": DISABLED}


def is_usable(flags: int) -> bool:
    return not flags & UNUSABLE


def state_letters(flags: int) -> str:
    """Kamailio's FLAGS column: ``A|I|D|T`` then ``P`` (probing) or ``X``."""
    if flags & INACTIVE:
        first = "I"
    elif flags & DISABLED:
        first = "D"
    elif flags & TRYING:
        first = "T"
    else:
        first = "A"
    return first + ("P" if flags & PROBING else "X")


def state_name(flags: int) -> str:
    """The state as a word, for tables and events: active, trying, inactive or disabled."""
    return {"A": "active", "I": "inactive", "D": "disabled", "T": "trying"}[state_letters(flags)[0]]


def parse_state(text: str) -> int:
    """``a|i|t|d`` optionally followed by ``p`` (any case) -> state bits.

    Raises ValueError for anything else (RPC answers "Unknown State Value").
    """
    lowered = text.strip().lower()
    if not lowered or lowered[0] not in _STATE_LETTERS or lowered[1:] not in ("", "p"):
        raise ValueError(f"unknown state {text!r}: expected a, i, t or d, optionally followed by p")
    return _STATE_LETTERS[lowered[0]] | (PROBING if lowered[1:] == "p" else 0)


def parse_flags(text: str) -> int:
    """The list file's flags column: decimal or ``0x`` hexadecimal."""
    value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    if value < 0:
        raise ValueError("negative")
    return value
