"""Kamailio's match expressions for counting/deleting by key name or value ($shtcn/$shtcv).

``~~re`` regex (extended, case-insensitive, unanchored), ``%~s`` starts with s, ``~%s`` ends
with s, ``==s`` exact string, ``eqN`` integer equals (values only), ``**`` everything; no
prefix means a regex. Text operators match string values only, ``eqN`` integer values only.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

Matcher = Callable[[object], bool]


class MatchError(ValueError):
    """A match expression that cannot be used; the message says why."""


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
    try:
        search = re.compile(pattern, re.IGNORECASE).search
    except re.error as exc:
        raise MatchError(f"{expr!r}: bad regular expression ({exc})") from None
    return _text(lambda text: search(text) is not None)
