"""A graded turn: how long it took, the hint deductions and over-time flag on the grade, and the record the
transcript keeps (shared by the grade node and /skip)."""

from __future__ import annotations

from typing import Any

from interviewer.bands import band_of
from interviewer.engine.context import Context
from interviewer.engine.state import MainThread, OpenQuestion, State, message
from interviewer.grading.contract import Grade, Target
from interviewer.messages import say


def answer_seconds(ctx: Context, state: State) -> float:
    inbox = state.get("inbox") or {}
    if inbox.get("seconds") is not None:
        return float(inbox["seconds"])
    asked = (state.get("current") or {}).get("asked_at") or inbox.get("at") or ctx.clock()
    return max(0.0, round((inbox.get("at") or ctx.clock()) - asked, 1))


def record(ctx: Context, state: State, current: OpenQuestion, answer: str, target: Target, grade: Grade) -> dict:
    """The state updates of a graded answer: the turn, coverage of the main question, stage time, the grade shown."""
    lang = state.get("lang", "zh")
    deduction = sum(h["deduction"] for h in current.hints)
    seconds = answer_seconds(ctx, state)
    budget = ctx.bank[target.question_id].time_budget_s if current.kind == "main" else ctx.plan(state["plan_id"]).answer_budget_s
    grade = adjust(grade, deduction, seconds, budget, lang)
    main = MainThread.load(state.get("main"))
    if current.target.kind in ("question", "probe") and current.target.question_id == main.question_id:
        main.covered = sorted(set(main.covered) | {p.point_id for p in grade.points if p.covered >= 0.75})
    main.last_grade = grade.model_dump()
    stage_seconds = dict(state.get("stage_seconds", {}))
    stage_seconds[current.stage] = stage_seconds.get(current.stage, 0) + seconds
    messages = list(state["messages"])
    if ctx.settings.feedback == "each":
        messages.append(message(grade_message(grade, lang), kind="grade", grade=grade.model_dump()))
    elif grade.notice:
        messages.append(message(grade.notice, kind="notice"))
    return {"turns": list(state.get("turns", [])) + [turn(ctx, current, answer, seconds, grade, lang, main.question_id)],
            "current": None,
            "main": main.model_dump(), "stage_seconds": stage_seconds, "messages": messages}


def adjust(grade: Grade, deduction: int, seconds: float, budget: int, lang: str) -> Grade:
    """Hint deductions and the over-time flag on top of the grader's grade."""
    updates: dict[str, Any] = {}
    if deduction:
        score = max(0, grade.score - deduction)
        updates |= {"score": score, "band": band_of(score), "hint_deduction": deduction,
                    "feedback": grade.feedback + say("hint_cost", lang, points=deduction)}
    if seconds > budget:
        updates |= {"flags": sorted(set(grade.flags) | {"over_time"}),
                    "feedback": updates.get("feedback", grade.feedback) + say("over_time", lang, seconds=int(seconds), budget=budget)}
    return grade.model_copy(update=updates) if updates else grade


def turn(ctx: Context, current: OpenQuestion, answer: str, seconds: float, grade: Grade, lang: str, thread: str | None = None) -> dict:
    """One graded turn as the transcript keeps it."""
    return {"stage": current.stage, "question_id": current.question_id, "target_id": current.target.id,
            "kind": current.kind, "topic": current.topic, "difficulty": current.difficulty, "question": current.text,
            "citations": current.citations, "answer": answer, "seconds": seconds, "self_rating": None,
            "hints_used": len(current.hints), "hints": current.hints, "commands": current.commands,
            "reverse_log": current.reverse_log, "reason": current.reason.value, "grade": grade.model_dump(),
            "reference_answer": ctx.reference(current.target, lang), "thread": thread}


def grade_message(grade: Grade, lang: str) -> str:
    notice = f"\n⚠️ {grade.notice}" if grade.notice else ""
    head = say("grade_head", lang, band=grade.band, score=grade.score)
    return f"{head}（{grade.grader}，置信度 {grade.confidence:.2f}）\n{grade.feedback}{notice}"
