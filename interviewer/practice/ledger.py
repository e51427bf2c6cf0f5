"""The ledger: every graded turn and key point of every session, and each item's memory state, in a ``Database``
(the store interface the sessions use; today ``data_dir/ledger.sqlite``, WAL, synchronous FULL: nothing acknowledged
is lost on SIGKILL).

Recording is idempotent — a turn is applied once, keyed by (session, turn index) — so the engine can hand over the
whole turn list after every message, and a crash between the checkpoint and the ledger is mended by the next one.
Imported transcripts (the JSON export) go through the same path. The ledger never holds the API key: only what a
transcript holds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from fsrs import Card

from interviewer.database import Database, DatabaseError, open_database
from interviewer.practice import schedule

SCHEMA_VERSION = 1
COVERED = 0.75
DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
  session_id TEXT NOT NULL, turn INTEGER NOT NULL, at TEXT NOT NULL, stage TEXT, kind TEXT, question_id TEXT,
  target_id TEXT, topic TEXT, question TEXT, band TEXT, score INTEGER, hints INTEGER, seconds REAL, self_rating TEXT,
  PRIMARY KEY (session_id, turn));
CREATE TABLE IF NOT EXISTS points (
  session_id TEXT NOT NULL, turn INTEGER NOT NULL, point_id TEXT NOT NULL, item TEXT NOT NULL, point TEXT,
  note TEXT, covered REAL, PRIMARY KEY (session_id, turn, point_id));
CREATE TABLE IF NOT EXISTS cards (item TEXT PRIMARY KEY, kind TEXT NOT NULL, topic TEXT, question_id TEXT,
  card TEXT NOT NULL, due TEXT NOT NULL, reviews INTEGER NOT NULL DEFAULT 0);
"""


class LedgerError(ValueError):
    """A ledger that cannot be used (written by a newer version, or not a ledger); nothing was changed."""


def utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def question_item(turn: dict) -> str:
    """The memory item of a turn: the main question or the follow-up/probe it answered."""
    return turn.get("target_id") or turn.get("question_id") or ""


class Ledger:
    """One user's practice history and memory states."""

    def __init__(self, where: Database | Path | str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        try:
            self.db = where if isinstance(where, Database) else open_database(where)
            self.db.script(DDL)
            self._check_version()
        except (DatabaseError, sqlite3.DatabaseError) as exc:
            raise LedgerError(f"{where}: not a ledger database ({exc})") from exc
        self.path = self.db.path
        self._conn = self.db.conn

    def _check_version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise LedgerError(f"{self.db.path}: written by a newer version (schema {row[0]} > {SCHEMA_VERSION}); "
                              "upgrade the interviewer to use it — nothing was changed")

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ recording

    def add_turns(self, session_id: str, turns: Iterable[dict], at: datetime | None = None) -> int:
        """Record the turns not recorded yet (and self-ratings given since); returns how many were new."""
        at = utc(at or self.clock())
        new = 0
        with self.db.transaction():
            for i, turn in enumerate(turns):
                new += self._add_turn(session_id, i, turn, at)
        return new

    def _add_turn(self, session_id: str, i: int, turn: dict, at: datetime) -> int:
        grade = turn.get("grade") or {}
        seen = self._conn.execute("SELECT 1 FROM turns WHERE session_id=? AND turn=?", (session_id, i)).fetchone()
        if seen:
            self._conn.execute("UPDATE turns SET self_rating=? WHERE session_id=? AND turn=?", (turn.get("self_rating"), session_id, i))
            return 0
        hints = int(turn.get("hints_used") or 0)
        item = question_item(turn)
        self._conn.execute("INSERT INTO turns VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
            session_id, i, at.isoformat(), turn.get("stage"), turn.get("kind"), turn.get("question_id") or turn.get("thread"),
            item, turn.get("topic"), turn.get("question"), grade.get("band"), grade.get("score"), hints,
            float(turn.get("seconds") or 0), turn.get("self_rating")))
        if "skipped" in (grade.get("flags") or []) and not turn.get("answer"):
            pass  # a skip is a 不会: recorded and scheduled like one
        if item:
            self._review(item, "question", turn.get("topic"), turn.get("question_id") or item.split("/")[0],
                         schedule.question_rating(grade.get("band", "不会"), hints), at)
        for p in grade.get("points") or []:
            point_item = f"{item}#{p['point_id']}"
            self._conn.execute("INSERT OR IGNORE INTO points VALUES (?,?,?,?,?,?,?)", (
                session_id, i, p["point_id"], point_item, p.get("point"), p.get("note"), float(p.get("covered") or 0)))
            self._review(point_item, "point", turn.get("topic"), item.split("/")[0],
                         schedule.point_rating(float(p.get("covered") or 0), hints), at)
        return 1

    def _review(self, item: str, kind: str, topic: str | None, question_id: str, rating, at: datetime) -> None:
        row = self._conn.execute("SELECT card, reviews FROM cards WHERE item=?", (item,)).fetchone()
        card = Card.from_json(row[0]) if row else schedule.new_card(item)
        card = schedule.review(card, rating, at)
        self._conn.execute("INSERT INTO cards VALUES (?,?,?,?,?,?,?) ON CONFLICT(item) DO UPDATE SET card=excluded.card, "
                         "due=excluded.due, reviews=cards.reviews+1, topic=excluded.topic",
                         (item, kind, topic, question_id, card.to_json(), utc(card.due).isoformat(), (row[1] + 1) if row else 1))

    def add_transcript(self, path: Path) -> int:
        """Add an exported JSON transcript (validated first: a malformed or foreign file changes nothing)."""
        from interviewer.report.transcript import load_transcript

        t = load_transcript(Path(path))
        return self.add_turns(t.session_id, [turn.model_dump(mode="json") for turn in t.turns])

    # ------------------------------------------------------------------ reading

    def rows(self, sql: str, args: tuple = ()) -> list[dict]:
        return self.db.rows(sql, args)

    def cards(self, kind: str | None = None) -> list[dict]:
        where, args = ("WHERE kind=?", (kind,)) if kind else ("", ())
        return self.rows(f"SELECT item, kind, topic, question_id, due, reviews, card FROM cards {where} ORDER BY due, item", args)

    def export(self) -> dict:
        """Everything the ledger holds, as JSON-able data (``interviewer ledger export``)."""
        return {"schema_version": SCHEMA_VERSION, "turns": self.rows("SELECT * FROM turns ORDER BY at, session_id, turn"),
                "points": self.rows("SELECT * FROM points ORDER BY session_id, turn, point_id"),
                "cards": [{k: (json.loads(v) if k == "card" else v) for k, v in c.items()} for c in self.cards()]}

    def forget(self) -> int:
        """Delete the whole history (``interviewer ledger forget``); returns the number of turns removed."""
        with self.db.transaction() as conn:
            n = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
            for table in ("turns", "points", "cards"):
                conn.execute(f"DELETE FROM {table}")
        return n
