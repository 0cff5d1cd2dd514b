"""SQLite persistence of the location table: write-through, loaded at start.

Every change is one statement committed at once, before the REGISTER is answered: the file
is in WAL mode with ``synchronous=NORMAL``, so a committed change survives the router being
killed (``kill -9``) — the OS has it; only a power loss may take the last commits. Columns
follow Kamailio's ``location`` table, with ``expires`` and ``last_modified`` as Unix times.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from kamrouter.modules.usrloc.location import Binding

_COLUMNS = ("contact", "expires", "q", "callid", "cseq", "path", "received", "socket",
            "user_agent", "instance", "reg_id", "flags", "cflags", "methods", "ruid",
            "last_modified")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS location (
    table_name TEXT NOT NULL, aor TEXT NOT NULL, contact TEXT NOT NULL, expires REAL NOT NULL,
    q INTEGER, callid TEXT, cseq INTEGER, path TEXT, received TEXT, socket TEXT,
    user_agent TEXT, instance TEXT, reg_id INTEGER, flags INTEGER, cflags INTEGER,
    methods INTEGER, ruid TEXT PRIMARY KEY, last_modified REAL);
CREATE INDEX IF NOT EXISTS location_aor ON location (table_name, aor);
"""
_UPSERT = (f"INSERT OR REPLACE INTO location (table_name, aor, {', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})")


class LocationStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def load(self, table: str, now: float, prune: bool = True) -> list[tuple[str, Binding]]:
        """The live bindings of ``table``; with ``prune``, expired rows are deleted on the way
        (by the one process that writes the file)."""
        if prune:
            self.db.execute("DELETE FROM location WHERE table_name = ? AND expires <= ?",
                            (table, now))
        else:
            rows = self.db.execute(f"SELECT aor, {', '.join(_COLUMNS)} FROM location "
                                   "WHERE table_name = ? AND expires > ?", (table, now))
            return [(row[0], Binding.from_row(row[1:])) for row in rows]
        rows = self.db.execute(f"SELECT aor, {', '.join(_COLUMNS)} FROM location "
                               "WHERE table_name = ?", (table,))
        return [(row[0], Binding.from_row(row[1:])) for row in rows]

    def write(self, table: str, op: str, aor: str, binding: Binding | None) -> None:
        if binding is None:  # a flush
            self.db.execute("DELETE FROM location WHERE table_name = ?", (table,))
        elif op == "put":
            self.db.execute(_UPSERT, (table, aor, *binding.as_row()))
        else:
            self.db.execute("DELETE FROM location WHERE ruid = ?", (binding.ruid,))

    def close(self) -> None:
        self.db.close()
