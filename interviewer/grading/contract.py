"""The grading contract shared by the graders, the engine, the exports and the eval: what an answer is graded
against (:class:`Target`) and what a grade says (:class:`Grade`, with its points and wrong claims)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from interviewer.knowledge.bank import FollowUp, KeyPoint, Misconception, NumericCheck, Question
from interviewer.knowledge.citation import Citation


class PointResult(BaseModel):
    point_id: str
    point: str
    covered: float = Field(ge=0, le=1)
    evidence: str = ""
    note: str = ""
    weight: float = 1.0


class MisconceptionFound(BaseModel):
    claim: str
    correction: str
    source: str
    evidence: str = ""
    point_id: str = ""  # a wrong number voids only the point it answers; other claims void any point they quote


class Grade(BaseModel):
    """The grading contract shared by the CLI, the engine, the exports and the eval."""

    question_id: str
    score: int = Field(ge=0, le=100)
    band: Literal["流畅", "基本", "卡顿", "不会"]
    points: list[PointResult]
    misconceptions: list[MisconceptionFound] = Field(default_factory=list)
    feedback: str = ""
    citations: list[Citation] = Field(default_factory=list)
    confidence: float = Field(ge=0, le=1, default=0.7)
    grader: str = "offline"
    flags: list[str] = Field(default_factory=list)
    notice: str = ""
    hint_deduction: int = 0

    def contract(self) -> dict:
        """The JSON printed by ``interviewer grade --json``."""
        data = self.model_dump()
        data["points"] = [{"point": p.point, "covered": p.covered, "evidence": p.evidence, "id": p.point_id,
                           "note": p.note} for p in self.points]
        return data


class TargetRef(BaseModel, frozen=True):
    """What an answer is graded against: a bank question, one of its follow-ups, or a probe of one key point.

    Its stable id (``kv_cache``, ``kv_cache/f1``, ``kv_cache/<point id>``) is what ``interviewer questions``
    lists and ``interviewer grade --question-id`` accepts."""

    kind: Literal["question", "follow_up", "probe"]
    question_id: str
    follow_up: int | None = None  # index into the question's follow-ups
    point_id: str | None = None  # the probed key point

    @property
    def id(self) -> str:
        if self.kind == "follow_up":
            return f"{self.question_id}/f{(self.follow_up or 0) + 1}"
        if self.kind == "probe":
            return f"{self.question_id}/{self.point_id}"
        return self.question_id

    @classmethod
    def parse(cls, ref: str) -> TargetRef:
        """The inverse of :attr:`id` (bank membership is checked by the caller)."""
        qid, _, rest = ref.partition("/")
        if not rest:
            return cls(kind="question", question_id=qid)
        if rest[:1] == "f" and rest[1:].isdigit() and int(rest[1:]) >= 1:
            return cls(kind="follow_up", question_id=qid, follow_up=int(rest[1:]) - 1)
        return cls(kind="probe", question_id=qid, point_id=rest)

    @classmethod
    def from_legacy(cls, ref: list) -> TargetRef:
        """A checkpoint of the first wave stored ``["question", qid]``, ``["probe", qid, pid]``, ``["follow_up", qid, i]``."""
        kind, qid = ref[0], ref[1]
        if kind == "probe":
            return cls(kind="probe", question_id=qid, point_id=ref[2])
        if kind == "follow_up":
            return cls(kind="follow_up", question_id=qid, follow_up=int(ref[2]))
        return cls(kind="question", question_id=qid)



@dataclass(frozen=True)
class Target:
    """What an answer is graded against: a bank question, or a follow-up with its own rubric."""

    question_id: str
    question: str
    reference: str
    points: tuple[KeyPoint, ...]
    misconceptions: tuple[Misconception, ...] = ()
    topic: str = ""
    numeric: NumericCheck | None = None  # the answer is a number computed from the question's inputs
    kind: str = "question"  # or "follow_up", "probe" (TargetRef.kind)
    numbers: tuple[NumericCheck, ...] = ()  # numbers a follow-up asks for: a known slip in one is a wrong claim

    @classmethod
    def of_question(cls, q: Question, lang: str = "zh") -> Target:
        return cls(q.id, q.question.get(lang), q.reference_answer.get(lang), tuple(q.rubric),
                   tuple(q.misconceptions), q.topic, q.numeric)

    @classmethod
    def of_follow_up(cls, q: Question, f: FollowUp, lang: str = "zh") -> Target:
        return cls(q.id, f.question.get(lang), "", tuple(f.rubric), tuple(q.misconceptions), q.topic, kind="follow_up",
                   numbers=tuple(f.numbers))

    @classmethod
    def of_probe(cls, q: Question, point: KeyPoint, lang: str = "zh") -> Target:
        return cls(q.id, point.probe.get(lang), point.point, (point,), tuple(q.misconceptions), q.topic, kind="probe")

    @classmethod
    def of_ref(cls, bank: dict[str, Question], ref: TargetRef | str, lang: str = "zh") -> Target:
        """The target a stable id names; ``KeyError`` when the bank has no such question, follow-up or point."""
        ref = TargetRef.parse(ref) if isinstance(ref, str) else ref
        q = bank[ref.question_id]
        if ref.kind == "probe":
            point = next((p for p in q.rubric if p.id == ref.point_id), None)
            if point is None:
                raise KeyError(ref.id)
            return cls.of_probe(q, point, lang)
        if ref.kind == "follow_up":
            if not 0 <= (ref.follow_up or 0) < len(q.follow_ups):
                raise KeyError(ref.id)
            return cls.of_follow_up(q, q.follow_ups[ref.follow_up or 0], lang)
        return cls.of_question(q, lang)


def reference_of(bank: dict[str, Question], ref: TargetRef, lang: str = "zh") -> str:
    """What a grade card shows as the reference once the question closes."""
    q = bank[ref.question_id]
    if ref.kind == "question":
        return q.reference_answer.get(lang)
    if ref.kind == "probe":
        return next(p.point for p in q.rubric if p.id == ref.point_id)
    return "；".join(p.point for p in q.follow_ups[ref.follow_up or 0].rubric)


def target_ids(q: Question) -> list[tuple[str, str, str]]:
    """(stable id, kind, zh text) of a question, each of its follow-ups and each key point's probe."""
    ids = [(q.id, "question", q.question.zh)]
    ids += [(TargetRef(kind="follow_up", question_id=q.id, follow_up=i).id, "follow_up", f.question.zh) for i, f in enumerate(q.follow_ups)]
    ids += [(TargetRef(kind="probe", question_id=q.id, point_id=p.id).id, "probe", p.probe.zh) for p in q.rubric if p.probe.zh]
    return ids
