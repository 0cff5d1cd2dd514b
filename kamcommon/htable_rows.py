"""Table content as files: CSV, JSON lines (kamcli import/export) and TOML (static tables).

A row is ``(key, value, seconds left or None)``. Both line formats say the value's type
explicitly, so a numeric-looking string stays a string:

- CSV: ``key,value,type,expires`` with ``type`` ``str`` (default) or ``int`` and ``expires``
  seconds from now (empty: never); a first line ``key,value,...`` is a header.
- JSON lines: ``{"key": "k", "value": 1 | "s", "expires": 30 | null}``, the type is JSON's.
- TOML (static tables): ``key = value`` pairs; integers stay integers, strings strings.

The router (static and persisted tables) and kamcli (import/export) both use it.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

Value = int | str
Row = tuple[str, Value, float | None]
CSV_HEADER = ("key", "value", "type", "expires")


class RowError(ValueError):
    """A line that cannot be read; the message names the source and line."""


def _expires(text: str, where: str) -> float | None:
    if text.strip() == "":
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise RowError(f"{where}: expires {text!r} is not a number of seconds") from None
    if seconds < 0:
        raise RowError(f"{where}: expires must be >= 0 seconds, got {text}")
    return seconds or None


def read_csv(lines: Iterable[str], source: str = "<csv>") -> Iterator[Row]:
    for number, fields in enumerate(csv.reader(lines), start=1):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        where = f"{source}:{number}"
        if number == 1 and fields[0].strip().lower() == "key":
            continue
        if not 2 <= len(fields) <= 4:
            raise RowError(f"{where}: expected key,value[,type[,expires]], got {len(fields)} "
                           "fields")
        key, text = fields[0], fields[1]
        kind = fields[2].strip().lower() if len(fields) > 2 else "str"
        value: Value
        if kind in ("", "str", "string"):
            value = text
        elif kind in ("int", "integer"):
            try:
                value = int(text)
            except ValueError:
                raise RowError(f"{where}: value {text!r} of type int is not an integer") from None
        else:
            raise RowError(f"{where}: type {kind!r} must be 'int' or 'str'")
        yield key, value, _expires(fields[3], where) if len(fields) > 3 else None


def csv_fields(row: Row) -> list[str]:
    key, value, expires = row
    return [key, str(value), "int" if type(value) is int else "str",
            "" if expires is None else f"{expires:g}"]


def read_json_lines(lines: Iterable[str], source: str = "<jsonl>") -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise RowError(f"{where}: not JSON ({exc})") from None
        if not isinstance(record, dict) or "key" not in record or "value" not in record:
            raise RowError(f"{where}: expected an object with \"key\" and \"value\"")
        key, value, expires = record["key"], record["value"], record.get("expires")
        if type(key) is not str:
            raise RowError(f"{where}: key must be a string, got {json.dumps(key)}")
        if type(value) not in (int, str):
            raise RowError(f"{where}: value must be an integer or a string, got "
                           f"{json.dumps(value)}")
        if expires is not None and (type(expires) not in (int, float) or expires < 0):
            raise RowError(f"{where}: expires must be a number of seconds >= 0 or null")
        yield key, value, expires or None


def json_line(row: Row) -> str:
    key, value, expires = row
    return json.dumps({"key": key, "value": value, "expires": expires}, ensure_ascii=False)


def rows_from_toml(document: dict[str, Any], source: str = "<toml>") -> list[Row]:
    rows: list[Row] = []
    for key, value in document.items():
        if type(value) not in (int, str):
            raise RowError(f"{source}: {key}: value must be an integer or a string, got "
                           f"{type(value).__name__}")
        rows.append((key, value, None))
    return rows
