"""What a front end (the browser UI) may ask of the product, and everything it shows, in one typed facade.

The UI talks to :class:`InterviewApp` only: sessions (start, send, resume, list), a :class:`SessionView` of a
session with every engine fact the page shows already derived, exports (one file per registered exporter),
settings, re-indexing the notes and the notes audit. It never touches the store, the bank or the retriever.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interviewer.config import Settings
from interviewer.engine.moves import next_hint_cost
from interviewer.engine.prefetch import Listener
from interviewer.engine.session import Reply
from interviewer.engine.store import SessionInfo
from interviewer.knowledge.audit import audit_paths
from interviewer.knowledge.bank import plan_ids
from interviewer.report.exporters import exporters
from interviewer.report.transcript import Transcript, build_transcript, safe_export_path
from interviewer.search.index import IndexReport, Progress, build_index
from interviewer.services import Services

REUSE_WINDOW_S = 120  # an untouched session this young is reused on page load instead of opening another


@dataclass(frozen=True)
class StageView:
    title: str
    questions: int
    status: str  # "done", "now" or "todo"
    checklist: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpenView:
    """The question on the table, as the timer shows it."""

    kind: str  # "main" or "follow_up"
    asked_at: float
    budget_s: int
    hints: int
    next_hint_cost: int | None  # what /hint would deduct now (None: no hints left)


@dataclass(frozen=True)
class SessionView:
    """Everything the page shows of one session."""

    session_id: str
    lang: str
    plan_title: str
    stages: tuple[StageView, ...]
    stage_i: int
    question_n: int  # position of the open main question within its stage (1-based)
    main_done_before: int  # main questions of the stages before this one
    main_count: int
    finished: bool
    feedback: str  # "each" or "end"
    current: OpenView | None
    messages: list[dict] = field(default_factory=list)
    turns: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)  # the raw checkpoint, for the transcript and exports


class InterviewApp:
    """The product as the UI sees it."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._start_lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self._services.settings

    @property
    def _iv(self):
        return self._services.interviewer

    # ------------------------------------------------------------------ sessions

    def exists(self, sid: str) -> bool:
        return self._iv.exists(sid)

    def start(self, plan: str | None = None) -> str:
        with self._start_lock:
            return self._iv.start(plan, lang=self.settings.lang).session_id

    def start_or_reuse(self) -> str:
        """A refresh before the browser stored the id reuses the newest untouched session instead of opening another."""
        with self._start_lock:
            for info in self._iv.store.list(limit=5):
                if self.reusable(info.id):
                    return info.id
            return self._iv.start(lang=self.settings.lang).session_id

    def reusable(self, sid: str, plan: str | None = None) -> bool:
        """A session opened moments ago that nobody has answered in yet, in the plan and current language."""
        info = self._iv.store.get(sid) if sid else None
        if info is None or info.status != "active" or info.plan != (plan or self.settings.plan) or info.lang != self.settings.lang:
            return False
        if time.time() - info.created > REUSE_WINDOW_S:
            return False
        try:
            state = self._iv.state(sid)
        except KeyError:
            return False
        return not state.get("inputs") and not state.get("finished")

    def send(self, sid: str, text: str, on_text: Listener | None = None) -> Reply:
        return self._iv.send(sid, text, on_text=on_text)

    def resume(self, sid: str) -> None:
        self._iv.resume(sid)

    def sessions(self, limit: int = 50) -> list[SessionInfo]:
        return self._iv.store.list(limit=limit)

    def plans(self) -> list[tuple[str, str]]:
        """(title, id) of every plan that loads; a broken plan file is left out."""
        choices = []
        for pid in plan_ids():
            try:
                choices.append((self._iv.plan(pid).title.get(self.settings.lang), pid))
            except Exception:  # noqa: BLE001 - a broken plan file is left out, not fatal
                continue
        if self._iv.ledger is not None:  # plans made from this candidate's history
            choices += [("Day 7 脚本 · 换一套题（没练过的或答得差的同话题题）", "seed_mock_fresh"), ("复习：到期的题和薄弱话题（20 分钟）", "review")]
        return choices

    # ------------------------------------------------------------------ what the page shows

    def view(self, sid: str) -> SessionView:
        state = self._iv.state(sid)
        plan = self._iv.plan(state["plan_id"])
        lang = state.get("lang", "zh")
        finished = bool(state.get("finished"))
        si = min(state.get("stage_i", 0), len(plan.stages) - 1)
        stages = tuple(StageView(s.title.get(lang), len(s.questions), "done" if finished or i < si else "now" if i == si else "todo",
                                 tuple(s.checklist)) for i, s in enumerate(plan.stages))
        current = state.get("current") or None
        open_view = None
        if current:
            q = self._iv.bank.get(current.get("question_id") or "")
            budget = q.time_budget_s if current.get("kind") == "main" and q is not None else plan.answer_budget_s
            used = len(current.get("hints") or [])
            open_view = OpenView(current.get("kind", "main"), float(current.get("asked_at") or time.time()), budget,
                                 used, next_hint_cost(used))
        return SessionView(
            session_id=sid, lang=lang, plan_title=plan.title.get(lang), stages=stages, stage_i=si,
            question_n=max(1, min(state.get("q_i", 0), len(plan.stages[si].questions))),
            main_done_before=sum(len(s.questions) for s in plan.stages[:si]), main_count=plan.main_count,
            finished=finished, feedback=self.settings.feedback, current=open_view,
            messages=list(state.get("messages") or []), turns=list(state.get("turns") or []),
            summary=dict(state.get("summary") or {}), state=state)

    def transcript(self, sid: str) -> Transcript:
        return build_transcript(self._iv.state(sid))

    def export(self, sid: str) -> dict[str, str]:
        """Write the session in every registered format; exporter name → file path."""
        t = self.transcript(sid)
        paths = {}
        for e in exporters():
            path = safe_export_path(self.settings.exports_dir, f"interview-{t.session_id[:12]}.{e.name}.{e.suffix}"
                                    if e.name != e.suffix else f"interview-{t.session_id[:12]}.{e.suffix}")
            path.write_text(e.write(t), encoding="utf-8")
            paths[e.name] = str(path)
        return paths

    # ------------------------------------------------------------------ settings, notes, audit

    def apply_settings(self, new: Settings, model: Any) -> str:
        """Use ``new`` and ``model`` from now on; saved for the next start (never the key). Returns a warning or ''."""
        warning = ""
        try:
            new.save()
        except OSError as exc:  # the choice still applies to this run
            warning = f"settings not saved: {exc}"
        self._services.settings = new
        self._services.model = model
        self._iv.reconfigure(new, model)
        return warning

    def reindex(self, folders: list[Path], progress: Progress | None = None) -> IndexReport:
        """Index the built-in notes and ``folders``; the new folder list is kept in the settings."""
        new = self.settings.with_(notes_dirs=tuple(folders))
        report = build_index(new, progress, self._services.retriever.collection)
        self._services.retriever.refresh(force=True)
        self.apply_settings(new, self._services.model)
        return report

    def progress(self) -> dict:
        """What the progress page shows (``practice.review.progress``) and today's 20-minute review."""
        from datetime import UTC, datetime

        from interviewer.knowledge.topics import topic_label
        from interviewer.practice.review import progress, review_questions

        ledger = self._iv.ledger
        if ledger is None:
            return {}
        now = datetime.now(UTC)
        data = progress(ledger, self._iv.bank, now)
        for row in data["mastery"]:
            row["label"] = topic_label(row["topic"], self.settings.lang)
        data["review_20"] = [(self._iv.bank[q].question.get(self.settings.lang), why) for q, why in review_questions(ledger, self._iv.bank, 20, now)]
        return data

    @staticmethod
    def audit(paths: list[Path]):
        return audit_paths(paths)

    def warm(self) -> None:
        """Load the embedder and BM25 before the first answer needs them."""
        self._services.retriever.warm()
