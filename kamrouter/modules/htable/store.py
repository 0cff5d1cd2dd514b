"""Persistence with no server: SQLite (stdlib) and static CSV/TOML files.

Every function here blocks; the module runs them in ``trio.to_thread``. Expiry is stored as
absolute Unix time so a restart honours it; rows carry seconds left.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

from kamrouter.config import ConfigError, read_toml
from kamcommon.htable_rows import Row, RowError, read_csv, rows_from_toml

# One SQL table for all htables; columns as Kamailio's htable DB table (key_value unbounded:
# Kamailio's fixed-width column truncated JSON values).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS htable (
    table_name TEXT NOT NULL,
    key_name   TEXT NOT NULL,
    value_type INTEGER NOT NULL,  -- 0 string, 1 integer
    key_value  TEXT NOT NULL,
    expires    REAL NOT NULL DEFAULT 0,  -- Unix time, 0 = never
    PRIMARY KEY (table_name, key_name)
)"""


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute(_SCHEMA)
        return db

    def load(self, table: str) -> list[Row]:
        """The table's unexpired rows (a missing database file is an empty table)."""
        if not self.path.exists():
            return []
        now = time.time()
        with closing(self._connect()) as db:
            cursor = db.execute("SELECT key_name, value_type, key_value, expires FROM htable "
                                "WHERE table_name = ?", (table,))
            rows: list[Row] = []
            for key, value_type, text, expires in cursor:
                if expires and expires <= now:
                    continue
                text = _from_sql(text)
                value = int(text) if value_type == 1 else text
                rows.append((_from_sql(key), value, expires - now if expires else None))
            return rows

    def replace(self, table: str, rows: Iterable[Row]) -> int:
        """Make the stored table exactly ``rows`` (one transaction); return the row count."""
        records = _records(table, rows)
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM htable WHERE table_name = ?", (table,))
            db.executemany("INSERT INTO htable VALUES (?, ?, ?, ?, ?)", records)
        return len(records)

    def write_batch(self, table: str, upserts: Iterable[Row], deletes: Iterable[str]) -> None:
        """Apply changed and deleted keys in one transaction (write-behind)."""
        with closing(self._connect()) as db, db:
            db.executemany("DELETE FROM htable WHERE table_name = ? AND key_name = ?",
                           [(table, _to_sql(key)) for key in deletes])
            db.executemany("INSERT OR REPLACE INTO htable VALUES (?, ?, ?, ?, ?)",
                           _records(table, upserts))


def _records(table: str, rows: Iterable[Row]
             ) -> list[tuple[str, str | bytes, int, str | bytes, float]]:
    now = time.time()
    return [(table, _to_sql(key), 1 if type(value) is int else 0, _to_sql(str(value)),
             now + expires if expires is not None else 0.0) for key, value, expires in rows]


def _to_sql(text: str) -> str | bytes:
    """SQLite takes only valid UTF-8 text: a key or value holding bytes of a SIP message
    that are not UTF-8 (decoded with surrogateescape) is stored as their raw bytes."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def _from_sql(stored: str | bytes) -> str:
    return stored.decode("utf-8", "surrogateescape") if isinstance(stored, bytes) else stored


def load_static(path: Path) -> list[Row]:
    """Rows of a CSV or TOML file; :class:`ConfigError` naming the file and line otherwise."""
    try:
        if path.suffix == ".toml":
            return rows_from_toml(read_toml(path), str(path))
        with open(path, newline="", encoding="utf-8") as f:
            return list(read_csv(f, str(path)))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except RowError as exc:
        raise ConfigError([str(exc)]) from None
