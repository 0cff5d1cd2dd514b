"""Where HA1 values come from (Kamailio auth_db): a SQLite subscriber table or a TOML file.

Only HA1 values are stored: ``ha1`` = MD5(user:realm:password), ``ha1b`` =
MD5(user@domain:realm:password), ``ha1_sha256`` = SHA-256(user:realm:password), with the
realm being the subscriber's domain. The SQLite table is read per request (an indexed
lookup), so ``kamcli subscriber add`` takes effect at once.
"""
from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path
from typing import NamedTuple

from kamrouter.modules.auth.digest import ha1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber (
    username TEXT NOT NULL, domain TEXT NOT NULL, ha1 TEXT NOT NULL, ha1b TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL, UNIQUE (username, domain));
"""


class Subscriber(NamedTuple):
    username: str
    domain: str
    ha1: str
    ha1b: str
    ha1_sha256: str

    @classmethod
    def with_password(cls, username: str, domain: str, password: str) -> Subscriber:
        return cls(username, domain, ha1("MD5", username, domain, password),
                   ha1("MD5", f"{username}@{domain}", domain, password),
                   ha1("SHA-256", username, domain, password))

    def ha1_for(self, algorithm: str) -> str:
        return self.ha1_sha256 if algorithm == "SHA-256" else self.ha1


class SqliteSubscribers:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def find(self, username: str, domain: str | None) -> Subscriber | None:
        if domain is None:
            row = self.db.execute("SELECT * FROM subscriber WHERE username = ? LIMIT 1",
                                  (username,)).fetchone()
        else:
            row = self.db.execute("SELECT * FROM subscriber WHERE username = ? AND domain = ?",
                                  (username, domain)).fetchone()
        return Subscriber(*row) if row else None

    def put(self, subscriber: Subscriber) -> bool:
        """Insert or replace; True when it was new."""
        new = self.find(subscriber.username, subscriber.domain) is None
        self.db.execute("INSERT OR REPLACE INTO subscriber VALUES (?, ?, ?, ?, ?)", subscriber)
        return new

    def remove(self, username: str, domain: str) -> bool:
        cursor = self.db.execute("DELETE FROM subscriber WHERE username = ? AND domain = ?",
                                 (username, domain))
        return cursor.rowcount > 0

    def all(self) -> list[Subscriber]:
        return [Subscriber(*row) for row in
                self.db.execute("SELECT * FROM subscriber ORDER BY domain, username")]

    def close(self) -> None:
        self.db.close()


class TomlSubscribers:
    """Read-only: ``["user@domain"]`` tables with ``ha1`` and ``ha1_sha256`` (``ha1b``
    optional)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        self._by_key: dict[tuple[str, str], Subscriber] = {}
        problems = []
        for key, value in raw.items():
            user, at, domain = key.partition("@")
            if not at or not isinstance(value, dict) or not isinstance(value.get("ha1"), str):
                problems.append(f"{key!r}: expected [\"user@domain\"] with ha1 = \"...\"")
                continue
            self._by_key[(user, domain)] = Subscriber(
                user, domain, value["ha1"], str(value.get("ha1b", "")),
                str(value.get("ha1_sha256", "")))
        if problems:
            raise ValueError("; ".join(problems))

    def find(self, username: str, domain: str | None) -> Subscriber | None:
        if domain is not None:
            return self._by_key.get((username, domain))
        return next((s for (u, _), s in self._by_key.items() if u == username), None)

    def all(self) -> list[Subscriber]:
        return sorted(self._by_key.values(), key=lambda s: (s.domain, s.username))
