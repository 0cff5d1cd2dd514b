"""Kamailio's match expressions for counting/deleting by key name or value ($shtcn/$shtcv).

``~~re`` regex (extended, case-insensitive, unanchored), ``%~s`` starts with s, ``~%s`` ends
with s, ``==s`` exact string, ``eqN`` integer equals (values only), ``**`` everything; no
prefix means a regex. Text operators match string values only, ``eqN`` integer values only.

Expressions come from operators over RPC and kamcli, and run on the event loop over every
key of a table, so regexes run on RE2 (google-re2): time linear in the key's length
whatever the pattern, where a backtracking engine takes exponential time on ``(a+)+$``.
RE2's syntax is POSIX ERE's (Kamailio's) plus Perl classes; back-references do not exist.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import re2

Matcher = Callable[[object], bool]


class MatchError(ValueError):
    """A match expression that cannot be used; the message says why."""


#: Longest accepted regex: RE2 compiles in bounded memory, this bounds it further.
MAX_PATTERN = 1024

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.case_sensitive = False
_RE2_OPTIONS.log_errors = False  # a bad operator pattern is an answer, not a log line
_RE2_OPTIONS.max_mem = 1 << 20


def _everything(_: object) -> bool:
    return True


def _text(test: Callable[[str], bool]) -> Matcher:
    return lambda value: isinstance(value, str) and test(value)


@lru_cache(maxsize=256)
def compile_match(expr: str, *, values: bool = False) -> Matcher:
    """A predicate for ``expr``; ``values`` selects value matching (allows ``eqN``)."""
    if expr == "**":
        return _everything
    prefix, rest = expr[:2], expr[2:]
    if prefix == "%~":
        return _text(lambda text: text.startswith(rest))
    if prefix == "~%":
        return _text(lambda text: text.endswith(rest))
    if prefix == "==":
        return _text(lambda text: text == rest)
    if prefix == "eq":
        if not values:
            raise MatchError(f"{expr!r}: eqN compares integer values, not key names")
        try:
            number = int(rest)
        except ValueError:
            raise MatchError(f"{expr!r}: eq needs an integer, e.g. eq10") from None
        return lambda value: type(value) is int and value == number
    pattern = rest if prefix == "~~" else expr
    if len(pattern) > MAX_PATTERN:
        raise MatchError(f"regular expression of {len(pattern)} characters: at most "
                         f"{MAX_PATTERN}")
    try:
        search = re2.compile(pattern, _RE2_OPTIONS).search
    except re2.error as exc:
        raise MatchError(f"{expr!r}: bad regular expression ({_reason(exc)})") from None
    return _text(lambda text: search(text) is not None)


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
