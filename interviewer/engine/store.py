"""Sessions: the LangGraph checkpointer (every turn) and a sessions table for listing, in one ``Database``.

The database (``interviewer.database``, the store interface the practice ledger shares) is a SQLite file in
the data directory: WAL mode and ``synchronous=FULL`` make every committed checkpoint survive a SIGKILL; a
candidate's answer is in the database before the interviewer starts to reply.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

from interviewer.database import Database, open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    lang TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    title TEXT NOT NULL DEFAULT '',
    score INTEGER
);
"""


class AtomicSqliteSaver(SqliteSaver):
    """SqliteSaver whose every write is one transaction.

    The shared connection runs in autocommit mode (``isolation_level=None``), where SqliteSaver's own
    ``commit()`` does nothing: a task's pending writes (several rows) could then be cut by a SIGKILL
    after the first row, and a resumed graph would take the task as done with half its writes (a
    turn's ``next`` without its ``branch:to:ask``), ending the turn without a question.
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db.conn)
        self.db = db
        self.lock = db.lock  # one lock per connection: no statement lands inside another's transaction

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        with self.lock:
            self.setup()
            with self.db.transaction() if transaction else nullcontext():
                cur = self.conn.cursor()
                try:
                    yield cur
                finally:
                    cur.close()


@dataclass(frozen=True)
class SessionInfo:
    id: str
    plan: str
    lang: str
    model: str
    created: float
    updated: float
    status: str
    title: str
    score: int | None

    def label(self) -> str:
        when = time.strftime("%m-%d %H:%M", time.localtime(self.created))
        score = f" · {self.score} 分" if self.score is not None else ""
        return f"{when} · {self.title or self.plan} · {self.status}{score} · {self.id[:8]}"


class SessionStore:
    """The sessions database: a checkpointer for the graph and a table of sessions."""

    def __init__(self, where: Database | Path | str) -> None:
        self.db = where if isinstance(where, Database) else open_database(where)
        self.path = self.db.path
        self.conn = self.db.conn
        self.db.script(SCHEMA)
        self.checkpointer = AtomicSqliteSaver(self.db)
        self.checkpointer.setup()
        self._lock = self.db.lock

    def create(self, plan: str, lang: str, model: str, title: str = "") -> str:
        sid = uuid.uuid4().hex
        now = time.time()
        with self._lock:
            self.conn.execute("INSERT INTO sessions (id, plan, lang, model, created, updated, title) VALUES (?,?,?,?,?,?,?)",
                              (sid, plan, lang, model, now, now, title))
        return sid

    def touch(self, sid: str, status: str | None = None, score: int | None = None) -> None:
        with self._lock:
            self.conn.execute("UPDATE sessions SET updated=?, status=COALESCE(?, status), score=COALESCE(?, score) WHERE id=?",
                              (time.time(), status, score, sid))

    def get(self, sid: str) -> SessionInfo | None:
        with self._lock:
            row = self.conn.execute("SELECT id, plan, lang, model, created, updated, status, title, score FROM sessions WHERE id=?",
                                    (sid,)).fetchone()
        return SessionInfo(*row) if row else None

    def list(self, limit: int = 50) -> list[SessionInfo]:
        with self._lock:
            rows = self.conn.execute("SELECT id, plan, lang, model, created, updated, status, title, score FROM sessions "
                                     "ORDER BY updated DESC LIMIT ?", (limit,)).fetchall()
        return [SessionInfo(*r) for r in rows]

    def integrity_ok(self) -> bool:
        return self.db.integrity_ok()

    def close(self) -> None:
        self.db.close()
