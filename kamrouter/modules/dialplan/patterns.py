"""The three match operators of a dialplan rule, compiled once when the rules are loaded.

``0`` exact string, ``1`` regular expression (Python's ``re``, searched unanchored and
case-sensitively, as Kamailio's PCRE matching), ``2`` fnmatch shell pattern (``*``, ``?``,
``[...]``/``[!...]``, ``\\`` escapes; ``*`` also matches ``/``, like fnmatch without flags).

Python's ``re`` has no time limit, so a rule's regex is refused when it nests unbounded
quantifiers (``(a+)+``, ``(a*|b)*``), the shape of catastrophic backtracking, and the
subject is bounded in length by the module (``max_length``). fnmatch patterns never
backtrack more than O(pattern × subject): they are matched by a two-pointer scan, not by
translating them into a regex.
"""
from __future__ import annotations

import re
from collections.abc import Callable

try:  # the parser behind re.compile; only used to look at a pattern's shape
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre_parse  # type: ignore[no-redef]

EXACT, REGEX, FNMATCH = 0, 1, 2
OPERATORS = {EXACT: "exact", REGEX: "regex", FNMATCH: "fnmatch"}
#: Longest regex or fnmatch pattern accepted.
MAX_PATTERN = 1024

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why."""


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile ``pattern``, refusing invalid ones and nested unbounded quantifiers."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"longer than {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise PatternError(f"bad regular expression {pattern!r} ({exc})") from None
    if _nested_unbounded(_sre_parse.parse(pattern), ""):
        raise PatternError(f"regular expression {pattern!r} nests unbounded repeats "
                           "(catastrophic backtracking): rewrite it without a repeated "
                           "group that itself repeats")
    return compiled


def _nested_unbounded(tokens: object, outer: str) -> bool:
    """True when a repeat sits inside another repeat and one of the two is unbounded
    (a fixed count such as ``{3}`` inside a repeat is not a choice, so it does not count).

    ``outer`` is "" (not inside a repeat), "bounded" or "unbounded".
    """
    for op, arg in tokens:  # type: ignore[attr-defined]
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            if high <= 1 or (low == high and outer != ""):  # "?", or "{3}" inside a repeat
                inner = outer
            else:
                unbounded = high == _sre_parse.MAXREPEAT or high > 100
                if outer == "unbounded" or (outer and unbounded):
                    return True
                inner = "unbounded" if unbounded else "bounded"
            if _nested_unbounded(sub, inner):
                return True
        elif name == "SUBPATTERN":
            if _nested_unbounded(arg[-1], outer):
                return True
        elif name == "BRANCH":
            if any(_nested_unbounded(branch, outer) for branch in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT", "ATOMIC_GROUP"):
            sub = arg[-1] if isinstance(arg, tuple) else arg
            if _nested_unbounded(sub, outer):
                return True
    return False


# -- fnmatch ----------------------------------------------------------------------------------

_STAR = object()
_ANY = object()


def _fn_tokens(pattern: str) -> list[object]:
    """``*`` / ``?`` markers, literal characters, and ``(negate, chars, ranges)`` classes."""
    tokens: list[object] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if not tokens or tokens[-1] is not _STAR:  # "**" is "*"
                tokens.append(_STAR)
        elif ch == "?":
            tokens.append(_ANY)
        elif ch == "\\" and i + 1 < n:
            i += 1
            tokens.append(pattern[i])
        elif ch == "[":
            parsed = _fn_class(pattern, i + 1)
            if parsed is None:
                tokens.append("[")  # no closing bracket: a literal '['
            else:
                token, i = parsed
                tokens.append(token)
                continue
        else:
            tokens.append(ch)
        i += 1
    return tokens


def _fn_class(pattern: str, i: int) -> tuple[tuple[bool, frozenset[str], tuple[tuple[str, str], ...]], int] | None:
    n = len(pattern)
    negate = i < n and pattern[i] in "!^"
    if negate:
        i += 1
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    first = True
    while i < n and (first or pattern[i] != "]"):
        first = False
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            i += 1
            ch = pattern[i]
        if i + 2 < n and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            ranges.append((ch, pattern[i + 2]))
            i += 3
        else:
            chars.add(ch)
            i += 1
    if i >= n:
        return None
    return (negate, frozenset(chars), tuple(ranges)), i + 1


def _fn_one(token: object, ch: str) -> bool:
    if token is _ANY:
        return True
    if isinstance(token, str):
        return token == ch
    negate, chars, ranges = token  # type: ignore[misc]
    inside = ch in chars or any(low <= ch <= high for low, high in ranges)
    return inside != negate


def compile_fnmatch(pattern: str) -> Matcher:
    """A predicate matching whole strings against the shell pattern ``pattern``."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"longer than {MAX_PATTERN} characters")
    tokens = _fn_tokens(pattern)

    def matches(text: str) -> bool:
        # Greedy scan that remembers the last '*': O(len(tokens) * len(text)) at worst.
        t = s = 0
        star_t, star_s = -1, 0
        while s < len(text):
            if t < len(tokens) and tokens[t] is not _STAR and _fn_one(tokens[t], text[s]):
                t += 1
                s += 1
            elif t < len(tokens) and tokens[t] is _STAR:
                star_t, star_s = t, s
                t += 1
            elif star_t >= 0:
                star_s += 1
                s = star_s
                t = star_t + 1
            else:
                return False
        while t < len(tokens) and tokens[t] is _STAR:
            t += 1
        return t == len(tokens)

    return matches


def compile_match(op: int, expression: str) -> Matcher:
    """The predicate of match operator ``op`` for ``expression``."""
    if op == EXACT:
        return expression.__eq__
    if op == REGEX:
        search = compile_regex(expression).search
        return lambda text: search(text) is not None
    if op == FNMATCH:
        return compile_fnmatch(expression)
    raise PatternError(f"match_op {op} is not 0 (exact), 1 (regex) or 2 (fnmatch)")
