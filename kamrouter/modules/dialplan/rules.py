"""Dialplan rules and translation, sans-IO: Kamailio's dialplan table semantics.

A rule (one row of Kamailio's ``dialplan`` table) has ``dpid``, ``pr`` (priority, lower
first), ``match_op`` (0 exact, 1 regex, 2 fnmatch), ``match_exp``, ``match_len`` (the
input length the rule is for, 0 = any), ``subst_exp`` (regex with groups), ``repl_exp``
(replacement with ``\\0``..``\\9``) and ``attrs``. Translating an input with a dialplan:

- rules whose ``match_len`` equals the input's length are tried first, then the
  ``match_len = 0`` rules, each group in priority order (file order within a priority);
- the first rule whose match expression matches wins; its ``attrs`` are the result's;
- the output is ``repl_exp`` with its back-references filled from ``subst_exp``'s match
  of the input — the whole output, not a replacement inside the input (write
  ``^0(.*)$`` → ``0049\\1``, not ``^0`` → ``0049``); no ``subst_exp``: ``repl_exp`` as
  is; no ``repl_exp``: an empty output (the translated variable keeps its value);
- a rule that matches but whose ``subst_exp`` does not is a failed translation (no later
  rule is tried), as in Kamailio.

Replacement escapes: ``\\0``-``\\9`` (groups), ``\\\\``, ``\\n``, ``\\r``, ``\\t``, ``\\$``
and ``\\u`` (the request's R-URI, empty without a request); ``$`` is a plain character
(Kamailio would expand cfg variables there).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kamrouter.modules.dialplan.patterns import (
    OPERATORS, Matcher, PatternError, compile_match, compile_regex,
)

#: Kamailio keeps at most this many characters of attrs.
MAX_ATTRS = 255
COLUMNS = ("dpid", "pr", "match_op", "match_exp", "match_len", "subst_exp", "repl_exp",
           "attrs")
#: The R-URI marker in a compiled replacement.
_URI = -1
_ESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t", "$": "$"}


class RuleError(ValueError):
    """A rule that cannot be loaded; the message names where it comes from."""


@dataclass(frozen=True)
class Translation:
    """A matching rule's result: the output (may be empty) and its attrs."""

    output: str
    attrs: str


@dataclass
class Rule:
    dpid: int
    pr: int
    match_op: int
    match_exp: str
    match_len: int
    subst_exp: str
    repl_exp: str
    attrs: str
    where: str = ""
    matches: Matcher = field(repr=False, default=str.__eq__)  # type: ignore[assignment]
    subst: re.Pattern[str] | None = field(repr=False, default=None)
    #: The replacement: literal strings and group numbers (``_URI`` for ``\\u``).
    replacement: tuple[str | int, ...] = field(repr=False, default=())

    def dump(self) -> dict[str, Any]:
        """Kamailio's ``dialplan.dump`` ENTRY (empty strings as null, as jsonrpcs sends them)."""
        return {"PRIO": self.pr, "MATCHOP": self.match_op, "MATCHEXP": self.match_exp or None,
                "MATCHLEN": self.match_len, "SUBSTEXP": self.subst_exp or None,
                "REPLEXP": self.repl_exp or None, "ATTRS": self.attrs or None}


def parse_replacement(text: str) -> tuple[tuple[str | int, ...], int]:
    """``repl_exp`` as parts, and the highest group it refers to (-1: none)."""
    parts: list[str | int] = []
    literal: list[str] = []
    highest = -1
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            literal.append(ch)
            i += 1
            continue
        if i + 1 >= len(text):
            raise PatternError(f"repl_exp {text!r} ends with a lone backslash")
        nxt = text[i + 1]
        if nxt.isdigit() or nxt == "u":
            if literal:
                parts.append("".join(literal))
                literal = []
            group = _URI if nxt == "u" else int(nxt)
            parts.append(group)
            highest = max(highest, group)
        elif nxt in _ESCAPES:
            literal.append(_ESCAPES[nxt])
        else:
            raise PatternError(f"repl_exp {text!r}: unknown escape \\{nxt} (use \\0-\\9, "
                               "\\\\, \\n, \\r, \\t, \\$ or \\u)")
        i += 2
    if literal:
        parts.append("".join(literal))
    return tuple(parts), highest


def _integer(row: dict[str, Any], name: str, default: int | None = None) -> int:
    value = row.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if type(value) is not int:
        raise PatternError(f"{name} must be an integer, got {value!r}")
    return value


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise PatternError(f"{name} must be a string, got {value!r}")
    return str(value)


def build_rule(row: dict[str, Any], where: str) -> Rule:
    """Compile one row (column name → value); :class:`RuleError` names ``where``."""
    try:
        unknown = [name for name in row if name not in COLUMNS and name != "id"]
        if unknown:
            raise PatternError(f"unknown column {unknown[0]!r} (columns: "
                               f"{', '.join(COLUMNS)})")
        rule = Rule(dpid=_integer(row, "dpid"), pr=_integer(row, "pr", 0),
                    match_op=_integer(row, "match_op"), match_exp=_text(row, "match_exp"),
                    match_len=_integer(row, "match_len", 0), subst_exp=_text(row, "subst_exp"),
                    repl_exp=_text(row, "repl_exp"), attrs=_text(row, "attrs"), where=where)
        if rule.match_op not in OPERATORS:
            raise PatternError(f"match_op {rule.match_op} is not 0 (exact), 1 (regex) or "
                               "2 (fnmatch)")
        if not rule.match_exp:
            raise PatternError("match_exp is empty")
        if rule.match_len < 0:
            raise PatternError(f"match_len must be >= 0, got {rule.match_len}")
        if len(rule.attrs) > MAX_ATTRS:
            raise PatternError(f"attrs longer than {MAX_ATTRS} characters")
        rule.matches = compile_match(rule.match_op, rule.match_exp)
        groups = 0
        if rule.subst_exp:
            rule.subst = compile_regex(rule.subst_exp)
            groups = rule.subst.groups
        rule.replacement, highest = parse_replacement(rule.repl_exp)
        if highest > groups:
            raise PatternError(f"repl_exp {rule.repl_exp!r} refers to group \\{highest} but "
                               f"subst_exp {rule.subst_exp!r} has only {groups}")
        return rule
    except PatternError as exc:
        raise RuleError(f"{where}: {exc}") from None


class Dialplan:
    """The rules of one dpid, indexed as Kamailio does: by match_len, then priority."""

    def __init__(self, dpid: int, rules: Iterable[Rule]) -> None:
        self.dpid = dpid
        ordered = sorted(rules, key=lambda rule: rule.pr)  # stable: file order per priority
        self.any_length = [rule for rule in ordered if rule.match_len == 0]
        self.by_length: dict[int, list[Rule]] = {}
        for rule in ordered:
            if rule.match_len:
                self.by_length.setdefault(rule.match_len, []).append(rule)

    @property
    def rules(self) -> list[Rule]:
        """In evaluation order (Kamailio's dump order): by match_len, 0 last, then priority."""
        return [rule for length in sorted(self.by_length) for rule in self.by_length[length]] \
            + self.any_length

    def find(self, text: str) -> Rule | None:
        """The first rule whose match expression matches ``text``."""
        for rule in self.by_length.get(len(text), ()):
            if rule.matches(text):
                return rule
        for rule in self.any_length:
            if rule.matches(text):
                return rule
        return None


class Dialplans:
    """Every dpid's rules; replaced as a whole on reload."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        grouped: dict[int, list[Rule]] = {}
        for rule in rules:
            grouped.setdefault(rule.dpid, []).append(rule)
        self.plans = {dpid: Dialplan(dpid, group) for dpid, group in sorted(grouped.items())}
        self.count = sum(len(group) for group in grouped.values())

    def get(self, dpid: int) -> Dialplan | None:
        return self.plans.get(dpid)


def translate(plan: Dialplan, text: str, max_length: int,
              ruri: Callable[[], str] | None = None) -> Translation | None:
    """Translate ``text`` with ``plan``; None when no rule matches (or the matching rule's
    subst_exp does not, or the output would be longer than ``max_length``)."""
    if not text or len(text) > max_length:
        return None
    rule = plan.find(text)
    if rule is None:
        return None
    if not rule.replacement:
        return Translation("", rule.attrs)
    if rule.subst is None:
        return Translation(rule.repl_exp, rule.attrs)  # copied as is, as Kamailio does
    found = rule.subst.search(text)
    if found is None:
        return None
    pieces = []
    for part in rule.replacement:
        if isinstance(part, str):
            pieces.append(part)
        elif part == _URI:
            pieces.append(ruri() if ruri is not None else "")
        else:
            pieces.append(found.group(part) or "")
    output = "".join(pieces)
    if len(output) > max_length:
        return None
    return Translation(output, rule.attrs)
