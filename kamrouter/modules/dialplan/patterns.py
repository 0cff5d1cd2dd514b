"""The three match operators of a dialplan rule, compiled once when the rules are loaded.

``0`` exact string, ``1`` regular expression (searched unanchored and case-sensitively, as
Kamailio's PCRE matching), ``2`` fnmatch shell pattern (``*``, ``?``, ``[...]``/``[!...]``,
``\\`` escapes; ``*`` also matches ``/``, like fnmatch without flags).

Regexes run on Python's ``re`` (fast to call), except those whose shape lets a backtracking
engine take exponential or high polynomial time: repeats nested in unbounded repeats
(``(a+)+``), alternatives inside an unbounded repeat (``(a|aa)*``), more than
``MAX_UNBOUNDED`` unbounded repeats (``.*.*.*.*x``). Those run on RE2 (google-re2: linear
in the subject's length, but ~20x the cost of a call), and are refused when they need what
RE2 lacks (back-references, lookarounds). Subjects are bounded by the module's
``max_length``. fnmatch patterns are matched by a two-pointer scan, O(pattern × subject),
never translated into a regex.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import re2

try:  # the parser behind re.compile; only used to look at a pattern's shape
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre_parse  # type: ignore[no-redef]

EXACT, REGEX, FNMATCH = 0, 1, 2
OPERATORS = {EXACT: "exact", REGEX: "regex", FNMATCH: "fnmatch"}
#: Longest regex or fnmatch pattern accepted.
MAX_PATTERN = 1024
#: More unbounded repeats than this in one regex: it runs on RE2.
MAX_UNBOUNDED = 3
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 1 << 20

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why."""


def compile_regex(pattern: str) -> Any:
    """Compile ``pattern``: an object with ``search(text)`` and ``groups``, as ``re``'s."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"longer than {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise PatternError(f"bad regular expression {pattern!r} ({exc})") from None
    risk = backtracking_risk(pattern)
    if risk is None:
        return compiled
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(
            exc.args[0], bytes) else str(exc)
        raise PatternError(f"regular expression {pattern!r} {risk} (catastrophic "
                           f"backtracking) and RE2, which runs such patterns safely, refuses "
                           f"it ({detail})") from None


def backtracking_risk(pattern: str) -> str | None:
    """Why ``pattern`` could make a backtracking engine take very long, or None."""
    unbounded = [0]
    risk = _walk(_sre_parse.parse(pattern), "", unbounded)
    if risk is None and unbounded[0] > MAX_UNBOUNDED:
        risk = f"has {unbounded[0]} unbounded repeats (more than {MAX_UNBOUNDED})"
    return risk


def _walk(tokens: Any, outer: str, unbounded: list[int]) -> str | None:
    """``outer``: "" (not inside a repeat), "bounded" or "unbounded"."""
    for op, arg in tokens:
        name = str(op)
        if name in _REPEATS:
            low, high, sub = arg
            if high <= 1 or (low == high and outer != ""):  # "?", or "{3}" inside a repeat
                inner = outer
            else:
                is_unbounded = high == _sre_parse.MAXREPEAT or high > 100
                unbounded[0] += is_unbounded
                if outer == "unbounded" or (outer and is_unbounded):
                    return "nests a repeat in an unbounded repeat"
                inner = "unbounded" if is_unbounded else "bounded"
            risk = _walk(sub, inner, unbounded)
            if risk:
                return risk
        elif name == "SUBPATTERN":
            risk = _walk(arg[-1], outer, unbounded)
            if risk:
                return risk
        elif name == "BRANCH":
            if outer == "unbounded" and not all(_one_char(branch) for branch in arg[1]):
                return "repeats alternatives without bound"
            for branch in arg[1]:
                risk = _walk(branch, outer, unbounded)
                if risk:
                    return risk
        elif name in ("ASSERT", "ASSERT_NOT", "ATOMIC_GROUP"):
            risk = _walk(arg[-1] if isinstance(arg, tuple) else arg, outer, unbounded)
            if risk:
                return risk
    return None


def _one_char(tokens: Any) -> bool:
    """An alternative that is one character (or class): ``(a|b)*`` cannot backtrack much."""
    return len(tokens) == 1 and str(tokens[0][0]) in ("LITERAL", "IN", "ANY", "NOT_LITERAL")


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


#: A bracket expression: negated?, single characters, (low, high) ranges.
ClassToken = tuple[bool, frozenset[str], tuple[tuple[str, str], ...]]


def _fn_class(pattern: str, i: int) -> tuple[ClassToken, int] | None:
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
    negate, chars, ranges = cast(ClassToken, token)
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
