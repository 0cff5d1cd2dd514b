"""Dialplan rules from files: Kamailio's ``dialplan`` table as CSV, or TOML.

CSV: one rule per line, the table's columns in Kamailio's order
``dpid,pr,match_op,match_exp,match_len,subst_exp,repl_exp,attrs``; a first line naming the
columns (it may add ``id`` or reorder them) is a header; ``#`` starts a comment line; quote
a field that holds a comma (``"^(1|2),x$"``). TOML: ``[[rules]]`` tables with the same keys
(single-quoted strings keep backslashes as written: ``repl_exp = '0049\\1'``).

Every error names the file and line; one bad rule refuses the whole file.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from kamrouter.config import ConfigError, read_toml
from kamrouter.modules.dialplan.rules import COLUMNS, Rule, RuleError, build_rule

#: More rules than this in one file is a mistake, not a dialplan.
MAX_RULES = 100_000


def read_rules(path: Path) -> list[Rule]:
    """The rules of ``path`` (.csv or .toml); :class:`RuleError` says what and where."""
    if path.suffix == ".toml":
        return _toml_rules(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return csv_rules(f.read().splitlines(), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read ({exc})") from None


def csv_rules(lines: list[str], source: str) -> list[Rule]:
    rules: list[Rule] = []
    columns: tuple[str, ...] = COLUMNS
    numbered = [(n, line) for n, line in enumerate(lines, start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    for (number, _), fields in zip(numbered, csv.reader(line for _, line in numbered)):
        where = f"{source}:{number}"
        if not rules and fields and fields[0].strip().lower() in ("dpid", "id") \
                and columns is COLUMNS:
            columns = tuple(name.strip().lower() for name in fields)
            missing = [name for name in ("dpid", "match_op", "match_exp") if name not in columns]
            if missing:
                raise RuleError(f"{where}: header lacks column {missing[0]!r}")
            continue
        if len(fields) > len(columns):
            raise RuleError(f"{where}: {len(fields)} fields, expected at most {len(columns)} "
                            f"({','.join(columns)})")
        rules.append(build_rule(dict(zip(columns, fields)), where))
        if len(rules) > MAX_RULES:
            raise RuleError(f"{where}: more than {MAX_RULES} rules")
    return rules


def _toml_rules(path: Path) -> list[Rule]:
    try:
        document = read_toml(path)
    except ConfigError as exc:
        raise RuleError(str(exc)) from None
    unknown = [key for key in document if key != "rules"]
    if unknown:
        raise RuleError(f"{path}: unknown key {unknown[0]!r} (rules go in [[rules]] tables)")
    rows = document.get("rules", [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise RuleError(f"{path}: 'rules' must be an array of tables ([[rules]])")
    lines = _header_lines(path, len(rows))
    return [build_rule(row, f"{path}:{line}") for row, line in zip(rows, lines)]


def _header_lines(path: Path, count: int) -> list[int]:
    """Line numbers of the ``[[rules]]`` headers (for messages; tomli gives none)."""
    found = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if line.strip().replace(" ", "").startswith("[[rules]]")]
    return found + [0] * (count - len(found))


def config_rules(rows: list[dict[str, Any]]) -> list[Rule]:
    """Rules written in the config file's ``[[dialplan.rules]]``."""
    return [build_rule(row, f"dialplan.rules[{i}]") for i, row in enumerate(rows)]
