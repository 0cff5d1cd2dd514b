"""mtree data files: Kamailio's ``mtree`` / ``mtrees`` tables as CSV, or TOML.

CSV, one prefix a line: ``prefix,value`` (Kamailio's ``mtree`` table: tprefix, tvalue);
more fields are packed into the value comma-separated, as Kamailio packs extra columns.
With ``multi = true`` a line is ``tname,prefix,value`` (Kamailio's ``mtrees`` table) and
only the tree's own lines are loaded. A first line naming the columns (``prefix,value`` /
``tprefix,tvalue`` / ``tname,...``) is a header; ``#`` starts a comment line. TOML:
``"49" = "de"`` pairs (quote the prefix), an array for several values of one prefix.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kamrouter.config import ConfigError, read_toml
from kamrouter.modules.mtree.tree import PrefixTree, TreeError, Value, build_tree

_HEADERS = ("prefix", "tprefix", "tname")


def load_file(tree: PrefixTree, path: Path, multi: bool = False) -> PrefixTree:
    """Fill ``tree`` from ``path``; :class:`TreeError` names the file and line."""
    if path.suffix == ".toml":
        try:
            document = read_toml(path)
        except ConfigError as exc:
            raise TreeError(str(exc)) from None
        return build_tree(tree, toml_rows(document), str(path))
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return build_tree(tree, csv_rows(f, str(path), tree.name if multi else None),
                              str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise TreeError(f"{path}: cannot read ({exc})") from None


def csv_rows(lines: Any, source: str, tname: str | None) -> Iterator[tuple[int, str, str]]:
    """``(line, prefix, value)`` of the lines (of tree ``tname`` when given)."""
    first = 2 if tname is not None else 1
    for number, fields in enumerate(csv.reader(lines), start=1):
        if not fields or fields[0].startswith("#") or (len(fields) == 1 and not fields[0]):
            continue
        if number == 1 and fields[0].strip().lower() in _HEADERS:
            continue
        if len(fields) <= first:
            raise TreeError(f"{source}:{number}: expected "
                            f"{'tname,' if tname is not None else ''}prefix,value")
        if tname is not None and fields[0] != tname:
            continue
        value = fields[first] if len(fields) == first + 1 else ",".join(fields[first:])
        yield number, fields[first - 1].strip(), value


def toml_rows(document: dict[str, Any], source: str = "") -> Iterator[tuple[str, str, Value]]:
    """``(key, prefix, value)`` rows of a ``prefix = value | [values]`` table."""
    for prefix, value in document.items():
        values = value if isinstance(value, list) else [value]
        for one in values:
            if type(one) not in (str, int):
                raise TreeError(f"{source}{prefix!r}: value must be a string or an integer, "
                                f"got {one!r}")
            yield f"key {prefix!r}", prefix, one
