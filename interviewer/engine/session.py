"""The session API: start, send, resume and read interviews; one LangGraph invocation per candidate message.

Graph (routing is code on evidence; a model only grades and words questions):

    ingest ─┬─ start ───────────────────────────────▶ ask ─▶ END
            ├─ command ─▶ command ─┬─ (moves on) ────▶ ask
            │                      ├─ (skip) ─▶ decide ─▶ ask
            │                      └─ (reply only) ──▶ END
            ├─ reverse question ─▶ reverse ─┬─ (enough asked) ─▶ grade
            │                               └─ (answered) ─────▶ END
            └─ answer ─▶ grade ─▶ decide ─▶ ask ─▶ END

Every node's result is checkpointed in SQLite (``store.py``); the candidate's message is in the input
checkpoint before any node runs, so a crash never loses a submitted answer. A session's messages run one at
a time; its model calls share one deadline per turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph

from interviewer.config import Settings
from interviewer.engine import nodes
from interviewer.engine.commands import command_node
from interviewer.engine.context import Context
from interviewer.engine.prefetch import Listener, PrefetchStats
from interviewer.engine.reverse import reverse_node
from interviewer.engine.state import State
from interviewer.engine.store import SessionStore
from interviewer.grading import answer_text as at
from interviewer.knowledge.bank import Plan, Question, default_bank
from interviewer.practice.ledger import Ledger
from interviewer.search.retrieval import Retriever

log = logging.getLogger(__name__)
DURABILITY = "sync"  # each checkpoint is on disk before the next node runs (the default "async" may lag a SIGKILL)
FRESH = "_fresh"  # "seed_mock_fresh": the same script with unseen or weak questions of the same topics


@dataclass
class Reply:
    """What one candidate message produced."""

    session_id: str
    messages: list[dict]
    state: dict


def build_graph(ctx: Context) -> StateGraph:
    g = StateGraph(State)
    g.add_node("ingest", partial(nodes.ingest, ctx))  # classify the message; the input is already persisted
    g.add_node("command", partial(command_node, ctx))  # /hint /skip /harder /rate /end
    g.add_node("reverse", partial(reverse_node, ctx))  # the candidate's own questions, answered from the notes
    g.add_node("grade", partial(nodes.grade, ctx))  # grade the open question's answer; record the turn
    g.add_node("decide", partial(nodes.decide, ctx))  # the policy chooses: probe, deeper, next question, or end
    g.add_node("ask", partial(nodes.ask, ctx))  # ground and word the chosen move (model optional) and show it
    g.add_edge(START, "ingest")
    g.add_conditional_edges("ingest", lambda s: s["route"],
                            {"ask": "ask", "command": "command", "reverse": "reverse", "grade": "grade", "end": END})
    g.add_conditional_edges("command", lambda s: s["route"], {"ask": "ask", "decide": "decide", "end": END})
    g.add_conditional_edges("reverse", lambda s: s["route"], {"grade": "grade", "end": END})
    g.add_edge("grade", "decide")
    g.add_edge("decide", "ask")
    g.add_edge("ask", END)
    return g


class Interviewer:
    """Runs interviews. One instance serves many sessions; a session's messages run one at a time."""

    def __init__(self, settings: Settings, retriever: Retriever | None, model=None, store: SessionStore | None = None,
                 bank: dict[str, Question] | None = None, clock: Callable[[], float] = time.time, ledger: Ledger | None = None) -> None:
        self.ctx = Context(settings=settings, bank=bank or default_bank(), retriever=retriever, model=model, clock=clock)
        self.store = store or SessionStore(settings.db_path)
        self.ledger = ledger  # every graded turn is recorded here (practice that remembers), when given
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.graph = build_graph(self.ctx).compile(checkpointer=self.store.checkpointer)

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def bank(self) -> dict[str, Question]:
        return self.ctx.bank

    @property
    def retriever(self) -> Retriever | None:
        return self.ctx.retriever

    @property
    def model(self):
        return self.ctx.model

    @property
    def prefetch(self) -> PrefetchStats:
        return self.ctx.prefetch

    def plan(self, plan_id: str) -> Plan:
        return self.ctx.plan(plan_id)

    def addresses(self) -> set[str]:
        return self.ctx.addresses()

    # ------------------------------------------------------------------ sessions

    def start(self, plan_id: str | None = None, lang: str | None = None, minutes: int = 20) -> Reply:
        """Open a new session and ask its first question. ``review`` builds today's 复习 plan from the ledger."""
        plan_id = plan_id or self.settings.plan
        fresh = plan_id.endswith(FRESH)
        plan = self._review_plan(minutes) if plan_id == "review" else self.plan(plan_id.removesuffix(FRESH))
        if self.ledger is not None and plan_id != "review" and (fresh or any(s.id == "drill" for s in plan.stages)):
            plan = self._personal_plan(plan, fresh)
        lang = lang or self.settings.lang
        sid = self.store.create(plan.id, lang, self.settings.model_label, plan.title.get(lang))
        init: State = {"session_id": sid, "plan_id": plan.id, "plan_title": plan.title.get(lang), "lang": lang, "model": self.settings.model_label,
                       "stage_i": 0, "q_i": 0, "queue": [], "turns": [], "asked": [], "messages": [],
                       "inputs": 0, "stage_seconds": {}, "ladder_levels": {}, "finished": False,
                       "inbox": {"kind": "start"}}
        return self._run(sid, init)

    def _review_plan(self, minutes: int) -> Plan:
        from datetime import UTC, datetime

        from interviewer.practice.review import review_plan

        ledger = self.ledger or Ledger(self.settings.ledger_path)
        plan, _why = review_plan(ledger, self.bank, minutes, datetime.now(UTC))
        self.ctx.save_plan(plan)
        return plan

    def _personal_plan(self, plan: Plan, fresh: bool) -> Plan:
        """The plan with the drill's missed numbers first, or ("换一套题") unseen or weak questions of the same topics."""
        from interviewer.practice.review import personalize

        personal, why = personalize(plan, self.ledger, self.bank, fresh)
        if not why:
            return plan
        self.ctx.save_plan(personal)
        return personal

    def send(self, session_id: str, text: object, seconds: float | None = None, on_text: Listener | None = None) -> Reply:
        """Process one candidate message (an answer or a command). ``on_text`` is called with the next
        question's text so far while a model writes it (the reply still carries the final text)."""
        raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else "" if text is None else str(text)
        text = at.normalize_answer(raw)
        inbox = {"kind": "message", "text": text, "seconds": seconds, "at": self.ctx.clock()}
        if len(text) == at.MAX_ANSWER_CHARS and len(raw) > at.MAX_ANSWER_CHARS:
            inbox["cut_from"] = len(raw)  # the candidate is told the answer was cut
        if on_text is None:
            return self._run(session_id, {"inbox": inbox})
        self.ctx.listeners[session_id] = on_text
        try:
            return self._run(session_id, {"inbox": inbox})
        finally:
            self.ctx.listeners.pop(session_id, None)

    def resume(self, session_id: str) -> Reply:
        """Finish a message a crash interrupted, then return the session as it stands."""
        with self._lock(session_id), self._turn(session_id):
            config = self._config(session_id)
            if self._interrupted(config):
                self.graph.invoke(None, config, durability=DURABILITY)
            state = self.state(session_id)
            self._remember(session_id, state)
            return Reply(session_id, [], state)

    def state(self, session_id: str) -> dict:
        snapshot = self.graph.get_state(self._config(session_id))
        if not snapshot.values:
            raise KeyError(f"no session {session_id}")
        return dict(snapshot.values)

    def exists(self, session_id: str) -> bool:
        return bool(session_id) and self.store.get(session_id) is not None

    def reconfigure(self, settings: Settings, model: Any = None) -> None:
        """Use new settings and chat model (``None`` = offline) from now on, e.g. after the UI's settings tab
        or a re-index; forgets the cached index addresses. Running sessions keep their language and plan."""
        self.ctx.settings = settings
        self.ctx.model = model
        if self.ctx.retriever is not None:
            self.ctx.retriever.settings = settings
        self.ctx.forget_addresses()

    # ------------------------------------------------------------------ plumbing

    def _interrupted(self, config: dict) -> bool:
        """A message whose run a crash cut short. ``next`` alone misses a step whose node finished and saved
        its writes but not the checkpoint after it (LangGraph lists that node under ``tasks``, not ``next``)."""
        snapshot = self.graph.get_state(config)
        return bool(snapshot.next or snapshot.tasks)

    @staticmethod
    def _config(sid: str) -> dict:
        return {"configurable": {"thread_id": sid}}

    def _lock(self, sid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(sid, threading.Lock())

    @contextmanager
    def _turn(self, sid: str):
        """One candidate turn: its model calls share one budget, so the whole turn stays within the deadline."""
        self.ctx.start_turn(sid)
        try:
            yield
        finally:
            self.ctx.end_turn(sid)

    def _run(self, sid: str, update: dict) -> Reply:
        with self._lock(sid), self._turn(sid):
            config = self._config(sid)
            before = len(self.graph.get_state(config).values.get("messages", []))
            if self._interrupted(config):  # an interrupted message: finish it first
                self.graph.invoke(None, config, durability=DURABILITY)
                before = len(self.graph.get_state(config).values.get("messages", []))
            result = self.graph.invoke(update, config, durability=DURABILITY)
        state = dict(result)
        self.store.touch(sid, "finished" if state.get("finished") else "active",
                         (state.get("summary") or {}).get("score"))
        self._remember(sid, state)
        return Reply(sid, state.get("messages", [])[before:], state)

    def _remember(self, sid: str, state: dict) -> None:
        """Hand every graded turn to the ledger (idempotent); a ledger fault never stops the interview."""
        if self.ledger is None or not state.get("turns"):
            return
        try:
            self.ledger.add_turns(sid, state["turns"])
        except Exception as exc:  # noqa: BLE001 - logged; the checkpoint still has every answer
            log.warning("ledger not updated for %s: %s", sid[:8], exc)
