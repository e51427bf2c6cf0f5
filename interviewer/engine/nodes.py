"""The graph's nodes for answers: ``ingest`` (classify the message), ``grade`` (grade it, record the turn),
``decide`` (the policy picks the next move) and ``ask`` (find its notes, let a model word it, show it).

Each node takes the :class:`Context` and the checkpointed state and returns the state updates. Commands and
the reverse stage have nodes of their own (``commands.py``, ``reverse.py``).
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Any

from interviewer.engine import policy
from interviewer.engine.commands import parse_command
from interviewer.engine.context import Context, result_within
from interviewer.engine.moves import ground, phrase_with_model
from interviewer.engine.prefetch import Prepared, TextStream
from interviewer.engine.state import MainThread, Move, OpenQuestion, Reason, State, message
from interviewer.engine.turns import record
from interviewer.grading import answer_text as at
from interviewer.grading.contract import Grade, Target
from interviewer.grading.offline import grade_offline, weighted_coverage
from interviewer.grading.registry import grade_answer
from interviewer.knowledge.topics import topic_label
from interviewer.messages import say
from interviewer.report.transcript import summarize

# ------------------------------------------------------------------ ingest


def ingest(ctx: Context, state: State) -> dict:
    """Route the message: the first question, a command, a reverse-stage question, or an answer to grade."""
    inbox = state.get("inbox") or {}
    lang = state.get("lang", "zh")
    if inbox.get("kind") == "start":
        return {"route": "ask", "next": policy.next_main(ctx.situation(state)).dump()}
    text = inbox.get("text", "")
    messages = list(state.get("messages", [])) + [message(text, role="user")]
    if inbox.get("cut_from"):
        messages.append(message(say("answer_cut", lang, length=inbox["cut_from"], kept=at.MAX_ANSWER_CHARS), kind="notice"))
    base = {"messages": messages, "inputs": state.get("inputs", 0) + 1}
    if state.get("finished"):
        return {**base, "messages": messages + [message(say("interview_over", lang))], "route": "end"}
    if parse_command(text):
        return {**base, "route": "command"}
    if not at.clean_text(text):
        return {**base, "messages": messages + [message(say("nothing_received", lang), kind="notice")], "route": "end"}
    current = OpenQuestion.load(state.get("current"))
    if current is None:  # no open question (a turn cut short before this version's atomic writes): ask one
        return {**base, "route": "ask", "next": policy.choose(ctx.situation(state)).dump()}
    stage = ctx.situation(state).stage
    if stage and stage.candidate_asks and current.question_id == stage.questions[0] and current.kind == "main":
        return {**base, "route": "reverse"}
    return {**base, "route": "grade"}


# ------------------------------------------------------------------ grade


def grade(ctx: Context, state: State) -> dict:
    current = OpenQuestion.load(state.get("current"))
    if current is None:  # nothing open to grade (a turn cut short by an older version): decide asks one
        return {}
    lang = state.get("lang", "zh")
    answer = (state.get("inbox") or {}).get("text", "")
    if current.reverse_log:
        answer = "\n".join(x["question"] for x in current.reverse_log)
    target = ctx.target(current.target, lang)
    offline = grade_offline(target, answer)
    if ctx.model is None:
        return record(ctx, state, current, answer, target, offline)
    sid = state.get("session_id")
    grading = ctx.pool.submit(grade_answer, target, answer, ctx.model, offline=offline)  # the model grades …
    if ctx.settings.prefetch:
        prepare_next(ctx, state, current, answer, target, offline)  # … while the likely follow-up is worded
    return record(ctx, state, current, answer, target, graded(ctx, grading, offline, sid))


def graded(ctx: Context, grading: Future, offline: Grade, sid: str | None) -> Grade:
    """The model's grade if it arrives within the turn's grading budget, else the offline one, said out loud."""
    try:
        return result_within(grading, ctx.budget(sid, 0.7))
    except FutureTimeout:
        return offline.model_copy(update={"grader": "offline (fallback)", "notice": say("model_timeout", "zh")})


# ------------------------------------------------------------------ decide and ask


def decide(ctx: Context, state: State) -> dict:
    return {"next": policy.choose(listening(ctx, state)).dump()}


ANSWERED = 0.75  # weighted coverage of a follow-up's points at which the last answer already answered it


def listening(ctx: Context, state: State) -> policy.Situation:
    """The policy's view, plus what the candidate just said: the main question's follow-ups that the last answer
    already covers (graded offline against each follow-up's own points), so none of them is asked."""
    s = ctx.situation(state)
    q = ctx.bank.get(s.main.question_id or "")
    if s.last is None or q is None or not q.follow_ups or not s.last.answer.strip():
        return s
    answered = set()
    for i, f in enumerate(q.follow_ups):
        target = Target.of_follow_up(q, f, s.lang)
        if weighted_coverage(grade_offline(target, s.last.answer, calibrated=False).points) >= ANSWERED:
            answered.add(f"{q.id}/f{i + 1}")
    return replace(s, answered=frozenset(answered))


def ask(ctx: Context, state: State) -> dict:
    """Show the chosen move: its notes found, a model's wording if any, the stage header for a new stage."""
    move = Move.load(state.get("next")) or Move(kind="end")
    prepared = ctx.prepared.pop(state.get("session_id") or "", None)  # only this turn's guess is ever used
    lang = state.get("lang", "zh")
    messages = list(state.get("messages", []))
    updates: dict[str, Any] = {"next": None}
    if move.from_queue:
        updates["queue"] = list(state.get("queue", []))[1:]
        move = move.model_copy(update={"from_queue": False})
    if move.kind == "end":
        summary = summarize(state.get("turns", []), lang)
        messages.append(message(closing(summary, lang), kind="summary"))
        return {**updates, "messages": messages, "finished": True, "summary": summary, "current": None}
    main = MainThread.load(state.get("main"))
    prefix = ""
    plan = ctx.plan(state["plan_id"])
    if move.plan_pos is not None:
        si, qi = move.plan_pos
        if si != state.get("stage_i", 0) or not state.get("asked"):
            prefix = f"—— {plan.stages[si].title.get(lang)} ——\n"
        updates |= {"stage_i": si, "q_i": qi + 1}
        main = MainThread(question_id=move.question_id)
        stage_id = plan.stages[si].id
    else:
        stage = ctx.situation(state).stage or plan.stages[-1]
        stage_id = stage.id
        if move.probes_point:
            main.probed = main.probed + [move.probes_point]
        if move.counts_as_follow_up:
            main.follow_ups += 1
        if move.reason == Reason.SCAFFOLD:
            prefix = say("scaffold", lang)
        last_answer = (state.get("turns") or [{}])[-1].get("answer", "") if move.reason in (Reason.MISSED, Reason.DEEPER) else ""
        move = ground(move, ctx.retriever, last_answer)
        if ctx.model is not None and move.rewordable:
            move = phrase(ctx, move, state, lang, prepared)
    current = OpenQuestion(**move.model_dump(exclude={"plan_pos"}), stage=stage_id, asked_at=ctx.clock())
    messages.append(message(prefix + move.text, kind=move.kind, citations=move.citations, question_id=move.question_id,
                            difficulty=move.difficulty, topic=move.topic))
    return {**updates, "messages": messages, "current": current.dump(), "main": main.model_dump(),
            "asked": list(state.get("asked", [])) + [move.text]}


def closing(summary: dict, lang: str) -> str:
    weak = "、".join(topic_label(t, lang) for t in summary.get("weak_topics", [])) or say("none", lang)
    return say("closing", lang, score=summary["score"], band=summary["band"], weak=weak)


# ------------------------------------------------------------------ model wording (ahead of time)


def prepare_next(ctx: Context, state: State, current: OpenQuestion, answer: str, target: Target, offline: Grade) -> None:
    """Guess the next move from the offline grade and start wording it (see ``prefetch.py``)."""
    sid = state.get("session_id") or ""
    ctx.prepared.pop(sid, None)
    guess_state = {**state, **record(ctx, state, current, answer, target, offline)}
    move = policy.choose(listening(ctx, guess_state))
    if move.rewordable and ctx.budget(sid, 0.3) >= 0.2:
        ctx.prepared[sid] = start_wording(ctx, move, guess_state, state.get("lang", "zh"))


def start_wording(ctx: Context, move: Move, state: State, lang: str) -> Prepared:
    last_answer = (state.get("turns") or [{"answer": ""}])[-1]["answer"]
    stream = TextStream()
    key = move.key

    def reword() -> Move:  # the note search counts against the deadline too
        grounded = ground(move, ctx.retriever, last_answer)
        passages = ctx.retriever.search(f"{move.text} {last_answer[:200]}", k=3) if ctx.retriever else []
        return phrase_with_model(ctx.model, grounded, passages, last_answer, lang, ctx.addresses(), stream,
                                 ctx.turn_ends.get(state.get("session_id") or ""))

    return Prepared(key, ctx.pool.submit(reword), stream)


def phrase(ctx: Context, move: Move, state: State, lang: str, prepared: Prepared | None) -> Move:
    sid = state.get("session_id") or ""
    budget = ctx.budget(sid, 0.3)
    if prepared is not None and prepared.key == move.key:
        ctx.prefetch.count("hit")
        job = prepared
    else:
        ctx.prefetch.count("miss" if prepared is not None else "late")
        if budget < 0.2:  # rewording is optional: not when the turn's time is nearly spent
            return move
        job = start_wording(ctx, move, state, lang)
    try:
        with job.stream.listening(ctx.listeners.get(sid)):
            phrased = result_within(job.future, budget)
    except FutureTimeout:
        return move
    if phrased.text in state.get("asked", []):
        return move
    return move.model_copy(update={"text": phrased.text, "citations": phrased.citations, "worded_by": phrased.worded_by})
