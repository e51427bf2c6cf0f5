"""The interview engine: the plan as a LangGraph state machine, one invocation per candidate message.

Graph (routing is code on evidence; a model only grades and words questions):

    ingest ─┬─ start ───────────────────────────────▶ ask ─▶ END
            ├─ command ─▶ command ─┬─ (moves on) ────▶ ask
            │                      ├─ (skip) ─▶ decide ─▶ ask
            │                      └─ (reply only) ──▶ END
            ├─ reverse question ─▶ reverse ─┬─ (enough asked) ─▶ grade
            │                               └─ (answered) ─────▶ END
            └─ answer ─▶ grade ─▶ decide ─▶ ask ─▶ END

Every node's result is checkpointed in SQLite (see ``store.py``); the candidate's message is in the
input checkpoint before any node runs, so a crash never loses a submitted answer.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from interviewer.config import Settings
from interviewer.engine import moves as fu
from interviewer.engine.commands import HELP, parse_command
from interviewer.engine.prefetch import Listener, PrefetchStats, Prepared, TextStream, move_key
from interviewer.engine.store import SessionStore
from interviewer.grading.offline import Grade, PointResult, Target, band_of, grade_answer, grade_offline
from interviewer.grading import answer_text as at
from interviewer.knowledge.bank import Plan, Question, default_bank, load_plan
from interviewer.report.transcript import summarize
from interviewer.search.retrieval import Retriever

DURABILITY = "sync"  # each checkpoint is on disk before the next node runs (the default "async" may lag a SIGKILL)
MODEL_SHARE = 0.85  # model calls of one turn must end by this share of turn_deadline_s; the rest is for local work
NO_MORE = re.compile(r"^\s*(没有了?|没了|没有问题了?|暂时没有|就这些|no more|nothing else|no(, thanks)?|that'?s all)\W*$", re.IGNORECASE)


class State(TypedDict, total=False):
    session_id: str
    plan_id: str
    lang: str
    model: str
    stage_i: int
    q_i: int
    main: dict  # the open main question: {question_id, follow_ups, covered, probed}
    current: dict  # the open question (main or follow-up)
    queue: list  # deferred moves to ask before the plan continues
    next: dict
    turns: list
    asked: list
    messages: list
    inbox: dict
    inputs: int
    route: str
    stage_seconds: dict
    ksana_level: int
    finished: bool
    summary: dict


@dataclass
class Reply:
    """What one candidate message produced."""

    session_id: str
    messages: list[dict]
    state: dict


def _msg(content: str, role: str = "assistant", **meta: Any) -> dict:
    return {"role": role, "content": content, **meta}


def _result_within(future: Future, seconds: float) -> Any:
    """``future``'s result within ``seconds`` (at least 0.1). On time-out it is cancelled, so a call still queued
    behind slow ones never runs, and ``FutureTimeout`` is raised."""
    try:
        return future.result(timeout=max(0.1, seconds))
    except FutureTimeout:
        future.cancel()
        raise


class Interviewer:
    """Runs interviews. One instance serves many sessions; a session's messages run one at a time."""

    def __init__(self, settings: Settings, retriever: Retriever | None, model=None, store: SessionStore | None = None,
                 bank: dict[str, Question] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.retriever = retriever
        self.model = model
        self.bank = bank or default_bank()
        self.store = store or SessionStore(settings.db_path)
        self.clock = clock
        self._plans: dict[str, Plan] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="model")
        self._turn_ends: dict[str, float] = {}  # session → monotonic time by which its model calls must end
        self._addresses: set[str] | None = None
        self._listeners: dict[str, Listener] = {}  # session → who sees a question while the model writes it
        self._prepared: dict[str, Prepared] = {}  # session → the follow-up worded while its answer is graded
        self.prefetch = PrefetchStats()
        self.graph = self._build_graph().compile(checkpointer=self.store.checkpointer)

    # ------------------------------------------------------------------ public API

    def plan(self, plan_id: str) -> Plan:
        if plan_id not in self._plans:
            plan = load_plan(plan_id)
            plan.check_against(self.bank)
            self._plans[plan_id] = plan
        return self._plans[plan_id]

    def start(self, plan_id: str | None = None, lang: str | None = None) -> Reply:
        """Open a new session and ask its first question."""
        plan = self.plan(plan_id or self.settings.plan)
        lang = lang or self.settings.lang
        sid = self.store.create(plan.id, lang, self.settings.model_label, plan.title.get(lang))
        init: State = {"session_id": sid, "plan_id": plan.id, "lang": lang, "model": self.settings.model_label,
                       "stage_i": 0, "q_i": 0, "queue": [], "turns": [], "asked": [], "messages": [],
                       "inputs": 0, "stage_seconds": {}, "ksana_level": 0, "finished": False,
                       "inbox": {"kind": "start"}}
        return self._run(sid, init)

    def send(self, session_id: str, text: object, seconds: float | None = None, on_text: Listener | None = None) -> Reply:
        """Process one candidate message (an answer or a command). ``on_text`` is called with the next
        question's text so far while a model writes it (the reply still carries the final text)."""
        raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else "" if text is None else str(text)
        text = at.normalize_answer(raw)
        inbox = {"kind": "message", "text": text, "seconds": seconds, "at": self.clock()}
        if len(text) == at.MAX_ANSWER_CHARS and len(raw) > at.MAX_ANSWER_CHARS:
            inbox["cut_from"] = len(raw)  # the candidate is told the answer was cut
        if on_text is None:
            return self._run(session_id, {"inbox": inbox})
        self._listeners[session_id] = on_text
        try:
            return self._run(session_id, {"inbox": inbox})
        finally:
            self._listeners.pop(session_id, None)

    def resume(self, session_id: str) -> Reply:
        """Finish a message a crash interrupted, then return the session as it stands."""
        with self._lock(session_id), self._turn_budget(session_id):
            config = self._config(session_id)
            if self._interrupted(config):
                self.graph.invoke(None, config, durability=DURABILITY)
            return Reply(session_id, [], self.state(session_id))

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
        self.settings = settings
        self.model = model
        self._addresses = None

    # ------------------------------------------------------------------ plumbing

    def _interrupted(self, config: dict) -> bool:
        """A message whose run a crash cut short. ``next`` alone misses a step whose node finished and saved
        its writes but not the checkpoint after it (LangGraph lists that node under ``tasks``, not ``next``)."""
        snapshot = self.graph.get_state(config)
        return bool(snapshot.next or snapshot.tasks)

    def _config(self, sid: str) -> dict:
        return {"configurable": {"thread_id": sid}}

    def _lock(self, sid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(sid, threading.Lock())

    @contextmanager
    def _turn_budget(self, sid: str):
        """One candidate turn: its model calls share one budget, so the whole turn stays within the deadline."""
        self._turn_ends[sid] = time.monotonic() + self.settings.turn_deadline_s * MODEL_SHARE
        try:
            yield
        finally:
            self._turn_ends.pop(sid, None)

    def _budget(self, sid: str | None, share: float) -> float:
        """Seconds a model call may take: its share of the deadline, capped by what is left of the turn."""
        left = self._turn_ends.get(sid or "", float("inf")) - time.monotonic()
        return max(0.0, min(self.settings.turn_deadline_s * share, left))

    def _run(self, sid: str, update: dict) -> Reply:
        with self._lock(sid), self._turn_budget(sid):
            config = self._config(sid)
            before = len(self.graph.get_state(config).values.get("messages", []))
            if self._interrupted(config):  # an interrupted message: finish it first
                self.graph.invoke(None, config, durability=DURABILITY)
                before = len(self.graph.get_state(config).values.get("messages", []))
            result = self.graph.invoke(update, config, durability=DURABILITY)
        state = dict(result)
        self.store.touch(sid, "finished" if state.get("finished") else "active",
                         (state.get("summary") or {}).get("score"))
        return Reply(sid, state.get("messages", [])[before:], state)

    def addresses(self) -> set[str]:
        if self._addresses is None:
            self._addresses = self.retriever.addresses() if self.retriever else set()
        return self._addresses

    def _stage(self, state: State):
        plan = self.plan(state["plan_id"])
        i = state.get("stage_i", 0)
        return plan.stages[i] if i < len(plan.stages) else None

    def _target(self, ref: list, lang: str) -> Target:
        kind, qid = ref[0], ref[1]
        q = self.bank[qid]
        if kind == "probe":
            point = next(p for p in q.rubric if p.id == ref[2])
            return Target.of_probe(q, point, lang)
        if kind == "follow_up":
            return Target.of_follow_up(q, q.follow_ups[ref[2]], lang)
        return Target.of_question(q, lang)

    # ------------------------------------------------------------------ graph

    def _build_graph(self) -> StateGraph:
        g = StateGraph(State)
        g.add_node("ingest", self._ingest)  # classify the message; the input is already persisted
        g.add_node("command", self._command)  # /hint /skip /harder /rate /end
        g.add_node("reverse", self._reverse)  # the candidate's own questions, answered from the notes
        g.add_node("grade", self._grade)  # grade the open question's answer; record the turn
        g.add_node("decide", self._decide)  # code chooses: probe, deeper, next question, or end
        g.add_node("ask", self._ask)  # word the chosen move (model optional) and show it
        g.add_edge(START, "ingest")
        g.add_conditional_edges("ingest", lambda s: s["route"],
                                {"ask": "ask", "command": "command", "reverse": "reverse", "grade": "grade", "end": END})
        g.add_conditional_edges("command", lambda s: s["route"], {"ask": "ask", "decide": "decide", "end": END})
        g.add_conditional_edges("reverse", lambda s: s["route"], {"grade": "grade", "end": END})
        g.add_edge("grade", "decide")
        g.add_edge("decide", "ask")
        g.add_edge("ask", END)
        return g

    # ------------------------------------------------------------------ nodes

    def _ingest(self, state: State) -> dict:
        inbox = state.get("inbox") or {}
        lang = state.get("lang", "zh")
        if inbox.get("kind") == "start":
            return {"route": "ask", "next": self._next_main(state)}
        text = inbox.get("text", "")
        messages = list(state.get("messages", [])) + [_msg(text, role="user")]
        if inbox.get("cut_from"):
            cut = f"回答太长（{inbox['cut_from']} 字），只保留并评分前 {at.MAX_ANSWER_CHARS} 字。" if lang == "zh" else \
                f"Your answer was too long ({inbox['cut_from']} characters); only the first {at.MAX_ANSWER_CHARS} were kept and graded."
            messages.append(_msg(cut, kind="notice"))
        base = {"messages": messages, "inputs": state.get("inputs", 0) + 1}
        if state.get("finished"):
            done = "面试已经结束，可以导出报告或开始新的面试。" if lang == "zh" else "This interview has ended; export the report or start a new one."
            return {**base, "messages": messages + [_msg(done)], "route": "end"}
        if parse_command(text):
            return {**base, "route": "command"}
        if not at.clean_text(text):
            empty = "没有收到内容。请输入你的回答，或输入 /skip 跳过、/hint 要提示。" if lang == "zh" else \
                "Nothing received. Type your answer, or /skip, or /hint."
            return {**base, "messages": messages + [_msg(empty, kind="notice")], "route": "end"}
        stage = self._stage(state)
        current = state.get("current") or {}
        if not current:  # no open question (a turn cut short before this version's atomic writes): ask one
            return {**base, "route": "ask", "next": self._choose(state)}
        if stage and stage.candidate_asks and current.get("question_id") == stage.questions[0] and current.get("kind") == "main":
            return {**base, "route": "reverse"}
        return {**base, "route": "grade"}

    def _answer_seconds(self, state: State) -> float:
        inbox = state.get("inbox") or {}
        if inbox.get("seconds") is not None:
            return float(inbox["seconds"])
        asked = (state.get("current") or {}).get("asked_at") or inbox.get("at") or self.clock()
        return max(0.0, round((inbox.get("at") or self.clock()) - asked, 1))

    def _grade(self, state: State) -> dict:
        if not state.get("current"):  # nothing open to grade (a turn cut short by an older version): decide asks one
            return {}
        current = dict(state["current"])
        lang = state.get("lang", "zh")
        answer = (state.get("inbox") or {}).get("text", "")
        if current.get("reverse_log"):
            answer = "\n".join(x["question"] for x in current["reverse_log"])
        target = self._target(current["target"], lang)
        offline = grade_offline(target, answer)
        if self.model is None:
            return self._record(state, current, answer, target, offline)
        sid = state.get("session_id")
        grading = self._pool.submit(grade_answer, target, answer, self.model, offline=offline)  # the model grades …
        if self.settings.prefetch:
            self._prepare_next(state, current, answer, target, offline)  # … while the likely follow-up is worded
        return self._record(state, current, answer, target, self._graded(grading, offline, sid))

    def _record(self, state: State, current: dict, answer: str, target: Target, grade: Grade) -> dict:
        """The state updates of a graded answer: the turn, coverage of the main question, stage time, the grade shown."""
        lang = state.get("lang", "zh")
        deduction = sum(h["deduction"] for h in current.get("hints", []))
        seconds = self._answer_seconds(state)
        budget = self.bank[target.question_id].time_budget_s if current["kind"] == "main" else self.plan(state["plan_id"]).answer_budget_s
        grade = self._adjust(grade, deduction, seconds, budget, lang)
        turn = self._turn(state, current, answer, seconds, grade)
        main = dict(state.get("main") or {})
        covered = set(main.get("covered", []))
        if current["target"][0] in ("question", "probe") and current["target"][1] == main.get("question_id"):
            covered |= {p.point_id for p in grade.points if p.covered >= 0.75}
        main["covered"] = sorted(covered)
        main["last_grade"] = grade.model_dump()
        stage_seconds = dict(state.get("stage_seconds", {}))
        stage_seconds[current["stage"]] = stage_seconds.get(current["stage"], 0) + seconds
        messages = list(state["messages"])
        if self.settings.feedback == "each":
            messages.append(_msg(self._grade_message(grade, lang), kind="grade", grade=grade.model_dump()))
        elif grade.notice:
            messages.append(_msg(grade.notice, kind="notice"))
        return {"turns": list(state.get("turns", [])) + [turn], "current": None, "main": main,
                "stage_seconds": stage_seconds, "messages": messages}

    def _graded(self, grading: Future, offline: Grade, sid: str | None) -> Grade:
        """The model's grade if it arrives within the turn's grading budget, else the offline one, said out loud."""
        try:
            return _result_within(grading, self._budget(sid, 0.7))
        except FutureTimeout:
            return offline.model_copy(update={"grader": "offline (fallback)", "notice": "模型响应超时，本题已改用离线评分。"})

    def _adjust(self, grade: Grade, deduction: int, seconds: float, budget: int, lang: str) -> Grade:
        updates: dict[str, Any] = {}
        if deduction:
            score = max(0, grade.score - deduction)
            updates |= {"score": score, "band": band_of(score), "hint_deduction": deduction,
                        "feedback": grade.feedback + (f" 使用提示扣 {deduction} 分。" if lang == "zh" else f" Hints cost {deduction} points.")}
        if seconds > budget:
            flags = sorted(set(grade.flags) | {"over_time"})
            note = f" 用时 {int(seconds)} 秒，超过 {budget} 秒的预算，练习把回答压缩到 1–2 分钟。" if lang == "zh" else \
                f" Took {int(seconds)} s, over the {budget} s budget: practise a 1–2 minute answer."
            updates |= {"flags": flags, "feedback": updates.get("feedback", grade.feedback) + note}
        return grade.model_copy(update=updates) if updates else grade

    def _turn(self, state: State, current: dict, answer: str, seconds: float, grade: Grade) -> dict:
        return {"stage": current["stage"], "question_id": current.get("question_id"), "kind": current["kind"],
                "topic": current["topic"], "difficulty": current["difficulty"], "question": current["text"],
                "citations": current.get("citations", []), "answer": answer, "seconds": seconds,
                "self_rating": None, "hints_used": len(current.get("hints", [])), "hints": current.get("hints", []),
                "commands": current.get("commands", []), "reverse_log": current.get("reverse_log", []),
                "reason": current.get("reason", ""), "grade": grade.model_dump(),
                "reference_answer": self._reference(current, state.get("lang", "zh"))}

    def _reference(self, current: dict, lang: str) -> str:
        ref = current["target"]
        q = self.bank[ref[1]]
        if ref[0] == "question":
            return q.reference_answer.get(lang)
        if ref[0] == "probe":
            return next(p.point for p in q.rubric if p.id == ref[2])
        return "；".join(p.point for p in q.follow_ups[ref[2]].rubric)

    def _grade_message(self, grade: Grade, lang: str) -> str:
        head = f"【评分】{grade.band} · {grade.score} 分" if lang == "zh" else f"[Grade] {grade.band} · {grade.score}/100"
        notice = f"\n⚠️ {grade.notice}" if grade.notice else ""
        return f"{head}（{grade.grader}，置信度 {grade.confidence:.2f}）\n{grade.feedback}{notice}"

    def _decide(self, state: State) -> dict:
        return {"next": self._choose(state)}

    def _choose(self, state: State) -> dict:
        queue = list(state.get("queue", []))
        if queue:
            return {**queue[0], "_pop": True}
        plan = self.plan(state["plan_id"])
        stage = self._stage(state)
        main = state.get("main") or {}
        last = state["turns"][-1] if state.get("turns") else None
        if stage is None or last is None:
            return self._next_main(state)
        grade = Grade.model_validate(last["grade"])
        over = state.get("stage_seconds", {}).get(stage.id, 0) > stage.budget_s
        room = main.get("follow_ups", 0) < plan.follow_up_budget and not over
        gave_up = "skipped" in grade.flags or ("dont_know" in grade.flags and grade.score < 30)
        if not room or gave_up or stage.candidate_asks or main.get("question_id") not in self.bank:
            return self._next_main(state)
        q = self.bank[main["question_id"]]
        asked = set(state.get("asked", []))
        lang = state.get("lang", "zh")
        if grade.score >= fu.STRONG and last["kind"] == "main" and stage.id == "technical":
            move = fu.deeper_move(q, asked, lang, self.retriever, last["answer"])
            if move:
                return move.to_state()
        probed = set(main.get("probed", []))
        missed = [p for p in q.rubric if p.id not in set(main.get("covered", [])) and p.id not in probed]
        missed = [p for p in sorted(missed, key=lambda p: -p.weight) if p.probe.get(lang) not in asked]
        if missed and grade.score < fu.STRONG:
            return fu.probe_move(q, missed[0], lang, self.retriever, last["answer"]).to_state()
        return self._next_main(state)

    def _next_main(self, state: State) -> dict:
        """The next main question of the plan, or the end."""
        plan = self.plan(state["plan_id"])
        si, qi = state.get("stage_i", 0), state.get("q_i", 0)
        while si < len(plan.stages) and qi >= len(plan.stages[si].questions):
            si, qi = si + 1, 0
        if si >= len(plan.stages):
            return {"kind": "end"}
        qid = plan.stages[si].questions[qi]
        q = self.bank[qid]
        return {"kind": "main", "question_id": qid, "text": q.question.get(state.get("lang", "zh")), "topic": q.topic,
                "difficulty": q.difficulty, "target": ["question", qid], "citations": [], "reason": "plan",
                "_plan": [si, qi]}

    def _ask(self, state: State) -> dict:
        move = dict(state.get("next") or {"kind": "end"})
        prepared = self._prepared.pop(state.get("session_id") or "", None)  # only this turn's guess is ever used
        lang = state.get("lang", "zh")
        messages = list(state.get("messages", []))
        updates: dict[str, Any] = {"next": None}
        if move.pop("_pop", False):
            updates["queue"] = list(state.get("queue", []))[1:]
        if move["kind"] == "end":
            summary = summarize(state.get("turns", []), lang)
            messages.append(_msg(self._closing(summary, lang), kind="summary"))
            return {**updates, "messages": messages, "finished": True, "summary": summary, "current": None}
        main = dict(state.get("main") or {})
        prefix = ""
        if "_plan" in move:
            si, qi = move.pop("_plan")
            plan = self.plan(state["plan_id"])
            if si != state.get("stage_i", 0) or not state.get("asked"):
                prefix = f"—— {plan.stages[si].title.get(lang)} ——\n"
            updates |= {"stage_i": si, "q_i": qi + 1}
            main = {"question_id": move["question_id"], "follow_ups": 0, "covered": [], "probed": []}
            stage_id = plan.stages[si].id
        else:
            stage_id = (self._stage(state) or self.plan(state["plan_id"]).stages[-1]).id
            if move.get("reason", "").startswith("missed:"):
                main["probed"] = main.get("probed", []) + [move["target"][2]]
            if move.get("reason") in ("deeper",) or move.get("reason", "").startswith("missed:"):
                main["follow_ups"] = main.get("follow_ups", 0) + 1
            if self.model is not None and self._worded_by_model(move):
                move = self._phrase(move, state, lang, prepared)
        current = {**move, "stage": stage_id, "asked_at": self.clock(), "hints": [], "commands": move.get("commands", [])}
        messages.append(_msg(prefix + move["text"], kind=move["kind"], citations=move.get("citations", []),
                             question_id=move.get("question_id"), difficulty=move.get("difficulty"), topic=move.get("topic")))
        return {**updates, "messages": messages, "current": current, "main": main,
                "asked": list(state.get("asked", [])) + [move["text"]]}

    @staticmethod
    def _worded_by_model(move: dict) -> bool:
        return move.get("kind") == "follow_up" and move.get("reason", "").startswith(("missed:", "deeper"))

    def _prepare_next(self, state: State, current: dict, answer: str, target: Target, offline: Grade) -> None:
        """Guess the next move from the offline grade and start wording it (see ``prefetch.py``)."""
        sid = state.get("session_id") or ""
        self._prepared.pop(sid, None)
        guess_state = {**state, **self._record(state, current, answer, target, offline)}
        move = self._choose(guess_state)
        if self._worded_by_model(move) and self._budget(sid, 0.3) >= 0.2:
            self._prepared[sid] = self._start_wording(move, guess_state, state.get("lang", "zh"))

    def _start_wording(self, move: dict, state: State, lang: str) -> Prepared:
        last = state["turns"][-1] if state.get("turns") else {"answer": ""}
        m = fu.Move(move["kind"], move.get("question_id"), move["text"], move["topic"], move["difficulty"],
                    move["target"], move.get("citations", []), move.get("reason", ""))
        stream = TextStream()

        def reword() -> fu.Move:  # the passage search counts against the deadline too
            passages = self.retriever.search(f"{move['text']} {last['answer'][:200]}", k=3) if self.retriever else []
            return fu.phrase_with_model(self.model, m, passages, last["answer"], lang, self.addresses(), stream)

        return Prepared(move_key(move), self._pool.submit(reword), stream)

    def _phrase(self, move: dict, state: State, lang: str, prepared: Prepared | None) -> dict:
        sid = state.get("session_id") or ""
        budget = self._budget(sid, 0.3)
        if prepared is not None and prepared.key == move_key(move):
            self.prefetch.count("hit")
            job = prepared
        else:
            self.prefetch.count("miss" if prepared is not None else "late")
            if budget < 0.2:  # rewording is optional: not when the turn's time is nearly spent
                return move
            job = self._start_wording(move, state, lang)
        try:
            with job.stream.listening(self._listeners.get(sid)):
                phrased = _result_within(job.future, budget)
        except FutureTimeout:
            return move
        if phrased.text in state.get("asked", []):
            return move
        return {**move, **phrased.to_state()}

    def _closing(self, summary: dict, lang: str) -> str:
        if lang == "en":
            return f"The interview is over. Overall {summary['score']} ({summary['band']}). See the report for the study plan."
        weak = "、".join(summary.get("weak_topics", [])) or "无"
        return f"面试结束。总分 {summary['score']}（{summary['band']}）。薄弱话题：{weak}。完整报告和复习计划见右侧/导出。"

    # ------------------------------------------------------------------ commands

    def _command(self, state: State) -> dict:
        text = (state.get("inbox") or {}).get("text", "")
        cmd = parse_command(text)
        lang = state.get("lang", "zh")
        messages = list(state["messages"])
        current = dict(state["current"]) if state.get("current") else None
        say = lambda zh, en: messages.append(_msg(zh if lang == "zh" else en, kind="notice"))  # noqa: E731
        if cmd.name in ("help", "unknown"):
            prefix = "" if cmd.name == "help" else ("未知命令。" if lang == "zh" else "Unknown command. ")
            say(prefix + HELP["zh"], prefix + HELP["en"])
            return {"messages": messages, "route": "end"}
        if cmd.name == "rate":
            turns = list(state.get("turns", []))
            if not turns:
                say("还没有已回答的题目可以自评。", "There is no answered question to rate yet.")
                return {"messages": messages, "route": "end"}
            turns[-1] = {**turns[-1], "self_rating": cmd.arg, "commands": turns[-1]["commands"] + [cmd.raw]}
            say(f"已记录自评：{cmd.arg}（评分器：{turns[-1]['grade']['band']}）。",
                f"Self-rating recorded: {cmd.arg} (grader: {turns[-1]['grade']['band']}).")
            return {"messages": messages, "turns": turns, "route": "end"}
        if cmd.name == "end":
            return {"messages": messages, "next": {"kind": "end"}, "route": "ask", "current": None}
        if current is None:
            say("当前没有进行中的题目。", "No question is open.")
            return {"messages": messages, "route": "end"}
        current["commands"] = current.get("commands", []) + [cmd.raw]
        if cmd.name == "hint":
            return self._hint(state, current, messages, lang)
        if cmd.name == "skip":
            return self._skip(state, current, messages, lang)
        return self._harder(state, current, messages, lang, ksana=cmd.name == "harder_ksana")

    def _hint(self, state: State, current: dict, messages: list, lang: str) -> dict:
        level = len(current.get("hints", [])) + 1
        if level > len(fu.HINT_DEDUCTIONS):
            messages.append(_msg("提示已经用完了，试着作答或 /skip。" if lang == "zh" else "No hints left; answer or /skip.", kind="notice"))
            return {"messages": messages, "current": current, "route": "end"}
        q = self.bank[current["target"][1]]
        target = self._target(current["target"], lang)
        covered = set((state.get("main") or {}).get("covered", []))
        points = [p for p in sorted(target.points, key=lambda p: -p.weight) if p.id not in covered] or list(target.points)
        text, deduction = fu.hint(q, points, level, lang)
        current["hints"] = current.get("hints", []) + [{"level": level, "text": text, "deduction": deduction}]
        total = sum(h["deduction"] for h in current["hints"])
        tail = f"（提示 {level}/3，本题累计扣 {total} 分）" if lang == "zh" else f" (hint {level}/3, −{total} points so far)"
        messages.append(_msg(text + tail, kind="hint"))
        return {"messages": messages, "current": current, "route": "end"}

    def _skip(self, state: State, current: dict, messages: list, lang: str) -> dict:
        target = self._target(current["target"], lang)
        points = [PointResult(point_id=p.id, point=p.point, covered=0, note=p.note, weight=p.weight) for p in target.points]
        grade = grade_offline(target, "")
        grade = grade.model_copy(update={"points": points, "flags": ["skipped"], "score": 0, "band": "不会",
                                         "feedback": ("已跳过。" if lang == "zh" else "Skipped. ") + grade.feedback})
        turn = self._turn(state, current, "", self._answer_seconds(state), grade)
        messages.append(_msg("好的，跳过这题。" if lang == "zh" else "OK, skipping this one.", kind="notice"))
        main = dict(state.get("main") or {})
        main["last_grade"] = grade.model_dump()
        return {"messages": messages, "turns": list(state.get("turns", [])) + [turn], "current": None,
                "main": main, "route": "decide"}

    def _harder(self, state: State, current: dict, messages: list, lang: str, ksana: bool) -> dict:
        asked = set(state.get("asked", []))
        if ksana:
            level = min(4, max(state.get("ksana_level", 0), current.get("difficulty", 1)) + 1)
            move = fu.harder_ksana_move(self.bank, level, asked, lang, self.retriever)
        else:
            q = self.bank[(state.get("main") or {}).get("question_id") or current["target"][1]]
            move = fu.harder_topic_move(self.bank, q, current.get("difficulty", 1) + 1, asked, lang, self.retriever)
        if move is None:
            messages.append(_msg("已经是最高难度了，没有更难的题了。" if lang == "zh" else "That is already the top level.", kind="notice"))
            return {"messages": messages, "current": current, "route": "end"}
        queue = list(state.get("queue", []))
        if current["kind"] == "main":  # put the unanswered main question back; it is asked after the detour
            queue.insert(0, {k: current[k] for k in ("kind", "question_id", "text", "topic", "difficulty", "target", "citations", "reason")}
                         | {"deferred": True})
        nxt = move.to_state() | {"commands": [(state.get("inbox") or {}).get("text", "").strip()]}
        updates = {"messages": messages, "queue": queue, "next": nxt, "route": "ask", "current": None}
        if ksana:
            updates["ksana_level"] = move.difficulty
        if current["kind"] == "main":
            asked_list = list(state.get("asked", []))
            if current["text"] in asked_list:
                asked_list.remove(current["text"])
            updates["asked"] = asked_list
        return updates

    # ------------------------------------------------------------------ reverse stage

    def _reverse(self, state: State) -> dict:
        current = dict(state["current"])
        lang = state.get("lang", "zh")
        text = state["inbox"]["text"]
        stage = self._stage(state)
        log = list(current.get("reverse_log", []))
        messages = list(state["messages"])
        done = bool(NO_MORE.match(text))
        if not done:
            answer, cites = self._answer_candidate_question(text, lang, state.get("session_id"))
            log.append({"question": text, "answer": answer, "citations": cites})
            messages.append(_msg(answer, kind="reverse_answer", citations=cites))
            done = len(log) >= stage.candidate_asks
            if not done:
                more = "还有其他问题吗？（没有的话说「没有了」）" if lang == "zh" else "Anything else? (say 'no more' when done)"
                messages.append(_msg(more, kind="notice"))
        current["reverse_log"] = log
        if done and not log:
            current["reverse_log"] = [{"question": text, "answer": "", "citations": []}]
        return {"current": current, "messages": messages, "route": "grade" if done else "end"}

    def _answer_candidate_question(self, question: str, lang: str, sid: str | None = None) -> tuple[str, list[dict]]:
        from interviewer.engine.reverse import answer_question

        stream = TextStream(clean=str.strip)
        with stream.listening(self._listeners.get(sid or "")):
            return answer_question(question, self.retriever, self.model, lang, max(0.1, self._budget(sid, 0.8)), self._pool, stream)
