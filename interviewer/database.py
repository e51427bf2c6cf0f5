"""The store interface behind the sessions and the practice ledger: one SQL database, one lock, transactions.

``SessionStore`` (engine) and ``Ledger`` (practice) both take a ``Database`` instead of opening files
themselves, so one server database can later back both by adding a backend here — today the only backend
is SQLite (a file in the data directory, WAL, ``synchronous=FULL``: a committed transaction survives a
SIGKILL). ``open_database`` reads a path or a ``sqlite:///path`` URL and refuses other schemes with a clear
error instead of guessing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DatabaseError(ValueError):
    """A database that cannot be opened (not a database, an unknown backend); nothing was changed."""


class Database:
    """One SQLite connection shared by threads; every statement runs under ``lock``."""

    backend = "sqlite"

    def __init__(self, path: Path, timeout: float = 30) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        try:
            self.conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=timeout, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: not a database ({exc})") from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside land together or not at all."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.conn.execute(sql, args)

    def script(self, ddl: str) -> None:
        """Create tables (``CREATE … IF NOT EXISTS``); a file that is not a database is refused."""
        try:
            with self.lock:
                self.conn.executescript(ddl)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: not a database ({exc})") from exc

    def rows(self, sql: str, args: tuple = ()) -> list[dict]:
        with self.lock:
            cur = self.conn.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def integrity_ok(self) -> bool:
        with self.lock:
            return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def open_database(where: str | Path) -> Database:
    """A path, or a URL: ``sqlite:///abs/path`` (other backends are named here when they exist)."""
    text = str(where)
    if "://" not in text:
        return Database(Path(text))
    scheme, _, rest = text.partition("://")
    if scheme == "sqlite":
        return Database(Path(rest))
    raise DatabaseError(f"database backend {scheme!r} is not supported yet (only sqlite); got {text!r}")
