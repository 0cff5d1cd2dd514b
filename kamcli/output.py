"""Rendering results: Rich tables for people, JSON/YAML for scripts, raw for shell pipes.

Only data goes to stdout. ``table`` builds a table from the result's shape:

- a list of objects: one row per object, columns = ``columns`` or the union of the keys;
- an object of objects: one row per member, its name in the first column;
- a flat object: two columns, name and value;
- a list of scalars: one column; a scalar: printed as is.

Nested values inside a cell are shown as compact JSON, never highlighted (Rich's highlighter
would colour parts of dates and addresses at random). A list of more than ``STREAM_FROM``
rows is not built as one Rich table (that took 45 s of CPU for 100,000 rows before showing
anything): it is printed line by line in columns sized from its first rows, through a pager
when stdout is a terminal. ``json`` is indented JSON
(coloured on a terminal), ``yaml`` block-style YAML, ``raw`` a string as is or compact JSON
on one line.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

#: Lists longer than this are streamed as plain columns, not built as a Rich table.
STREAM_FROM = 1000
#: Rows that size the columns of a streamed list (longer cells later just stick out).
SIZING_ROWS = 1000

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def render(result: Any, fmt: str, console: Callable[[], Console], *,
           columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print ``result`` on stdout; ``console()`` is asked for only when Rich is needed."""
    if fmt == "json":
        text = json.dumps(result, indent=2, ensure_ascii=False)
        if sys.stdout.isatty():
            console().print_json(text)
        else:
            sys.stdout.write(text + "\n")
    elif fmt == "yaml":
        import yaml  # imported on use: it costs ~15 ms at startup

        sys.stdout.write(yaml.safe_dump(result, sort_keys=False, allow_unicode=True,
                                        default_flow_style=False))
    elif fmt == "raw":
        sys.stdout.write(cell(result) + "\n")
    elif _is_long_list(result):
        _print_lines(stream_lines(result, list(columns or _union_of_keys(result[:SIZING_ROWS])),
                                  title))
    else:
        table = build_table(result, columns=columns, title=title)
        if table is None:
            console().print(cell(result), highlight=False, markup=False, soft_wrap=True)
        else:
            console().print(table)
    sys.stdout.flush()


def _is_long_list(result: Any) -> bool:
    return (isinstance(result, list) and len(result) > STREAM_FROM
            and all(isinstance(row, dict) for row in result))


def stream_lines(rows: list[dict[str, Any]], names: list[str],
                 title: str | None) -> Iterator[str]:
    """The lines of a plain table of ``rows``: title, header, rule, one line per row."""
    sample = [[_one_line(cell(row.get(name))) for name in names] for row in rows[:SIZING_ROWS]]
    headers = [name.replace("_", " ") for name in names]
    widths = [max([len(header)] + [len(values[i]) for values in sample])
              for i, header in enumerate(headers)]
    width = sum(widths) + 2 * (len(widths) - 1)
    if title:
        yield title.center(width).rstrip()
    yield _join(headers, widths)
    yield "─" * width
    for row in rows:
        yield _join([_one_line(cell(row.get(name))) for name in names], widths)


def _join(values: list[str], widths: list[int]) -> str:
    return "  ".join(value.ljust(width) for value, width in zip(values, widths)).rstrip()


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _print_lines(lines: Iterator[str]) -> None:
    """On stdout; through the pager ($PAGER, else less) when stdout is a terminal."""
    if sys.stdout.isatty():
        import click

        click.echo_via_pager(line + "\n" for line in lines)
        return
    for line in lines:
        sys.stdout.write(line + "\n")


def cell(value: Any) -> str:
    """One value as text: strings as is, nothing for null, compact JSON for the rest."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def build_table(result: Any, *, columns: Sequence[str] | None = None,
                title: str | None = None) -> Table | None:
    """The table for ``result``, or None when it is a scalar best printed bare."""
    if isinstance(result, list):
        if (result or columns) and all(isinstance(row, dict) for row in result):
            names = list(columns or _union_of_keys(result))
            return _table(names, ([row.get(name) for name in names] for row in result), title)
        return _table(list(columns or ["value"])[:1], ([item] for item in result), title)
    if isinstance(result, dict):
        if result and all(isinstance(v, dict) for v in result.values()):
            inner = _union_of_keys(list(result.values()))
            names = list(columns or ["name", *inner])
            return _table(names, ([key, *(value.get(n) for n in names[1:])]
                                  for key, value in result.items()), title)
        names = list(columns or ["name", "value"])[:2]
        return _table(names, ([key, value] for key, value in result.items()), title)
    return None


def _union_of_keys(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def _table(names: list[str], rows: Any, title: str | None) -> Table:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, highlight=False)
    for name in names:
        table.add_column(name.replace("_", " "), overflow="fold")  # a header, not a key
    for row in rows:
        table.add_row(*(escape(cell(value)) for value in row))
    return table
