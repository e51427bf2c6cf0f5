"""The routing policy: which question comes next, decided from the state, the plan, the bank and the last grade.

Pure: no index, no model, no store, no clock. The ``ask`` node finds the citations of the move chosen here
(:func:`interviewer.engine.moves.ground`) and a model may reword it; neither changes the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from interviewer.engine.moves import STRONG, deeper_move, easier_move, probe_move
from interviewer.engine.state import END, MainThread, Move, Reason, TargetRef
from interviewer.grading.contract import Grade
from interviewer.knowledge.bank import Plan, Question, StagePlan


@dataclass(frozen=True)
class LastTurn:
    """What the policy needs of the last graded turn."""

    kind: str  # "main" or "follow_up"
    answer: str
    grade: Grade
    reason: str = ""  # why it was asked (``Reason``): after a scaffold the thread climbs back up


@dataclass(frozen=True)
class Situation:
    """The slice of the engine state the policy reads."""

    plan: Plan
    bank: dict[str, Question]
    lang: str = "zh"
    stage_i: int = 0
    q_i: int = 0
    main: MainThread = field(default_factory=MainThread)
    queue: tuple[Move, ...] = ()
    last: LastTurn | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    asked: frozenset[str] = frozenset()
    answered: frozenset[str] = frozenset()  # follow-up ids the last answer already covered (never asked again)
    thread_seconds: float = 0.0  # time spent on the open main question and its follow-ups so far

    @property
    def stage(self) -> StagePlan | None:
        return self.plan.stages[self.stage_i] if self.stage_i < len(self.plan.stages) else None


def next_main(s: Situation) -> Move:
    """The next main question of the plan, or the end."""
    si, qi = s.stage_i, s.q_i
    stages = s.plan.stages
    while si < len(stages) and qi >= len(stages[si].questions):
        si, qi = si + 1, 0
    if si >= len(stages):
        return END
    qid = stages[si].questions[qi]
    q = s.bank[qid]
    return Move(kind="main", question_id=qid, text=q.question.get(s.lang), topic=q.topic, difficulty=q.difficulty,
                target=TargetRef(kind="question", question_id=qid), reason=Reason.PLAN, plan_pos=(si, qi))


def gave_up(grade: Grade) -> bool:
    return "skipped" in grade.flags or ("dont_know" in grade.flags and grade.score < 30)


def did_not_start(last: LastTurn) -> bool:
    """An answer to a main question that said it does not know (not a /skip: a skip is respected) or earned
    nothing: the moment to scaffold down one level rather than probe a detail of a question not understood."""
    g = last.grade
    return last.kind == "main" and "skipped" not in g.flags and ("dont_know" in g.flags or g.band == "不会")


THREAD_SHARE = 2.0  # a main question's thread (answer and follow-ups) may take this many times its time budget


def room_for_follow_up(s: Situation) -> bool:
    """The main question's follow-up budget, its thread's time (so topic time follows the plan's budgets) and the
    stage's time budget all have room."""
    stage = s.stage
    over = stage is not None and s.stage_seconds.get(stage.id, 0) > stage.budget_s
    q = s.bank.get(s.main.question_id or "")
    thread_over = q is not None and s.thread_seconds > THREAD_SHARE * q.time_budget_s
    return s.main.follow_ups < s.plan.follow_up_budget and not over and not thread_over


def choose(s: Situation) -> Move:
    """The next move: a deferred question first; after a strong answer in the technical stage a harder follow-up
    that the answer has not already covered; after an answer that did not get started an easier question of the
    same topic (scaffold down one level); after a weaker one a probe of the heaviest missed point; otherwise the
    plan goes on."""
    if s.queue:
        return s.queue[0].model_copy(update={"from_queue": True})
    stage, last = s.stage, s.last
    if stage is None or last is None:
        return next_main(s)
    q = s.bank.get(s.main.question_id or "")
    if q is None or not room_for_follow_up(s) or stage.candidate_asks:
        return next_main(s)
    if stage.id == "technical" and did_not_start(last) and q.difficulty > 1:  # weak: one level easier, same topic
        move = easier_move(s.bank, q, set(s.asked), s.lang)
        if move:
            return move
    if gave_up(last.grade) or (last.reason == Reason.SCAFFOLD and last.grade.score < 60):
        return next_main(s)  # a scaffold that did not hold either: the plan goes on
    if last.grade.score >= STRONG and stage.id == "technical" and last.reason != Reason.SCAFFOLD:  # strong: one level deeper on the same thread
        move = deeper_move(q, set(s.asked), s.lang, skip=s.answered)
        if move:
            return move
    missed = [p for p in q.rubric if p.id not in set(s.main.covered) and p.id not in set(s.main.probed)]
    missed = [p for p in sorted(missed, key=lambda p: -p.weight) if p.probe.get(s.lang) not in s.asked]
    if missed and (last.grade.score < STRONG or last.reason == Reason.SCAFFOLD):  # after a scaffold: back up
        return probe_move(q, missed[0], s.lang)
    return next_main(s)
