"""The grading contract shared by the graders, the engine, the exports and the eval: what an answer is graded
against (:class:`Target`) and what a grade says (:class:`Grade`, with its points and wrong claims)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from interviewer.knowledge.bank import FollowUp, KeyPoint, Misconception, Question
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


@dataclass(frozen=True)
class Target:
    """What an answer is graded against: a bank question, or a follow-up with its own rubric."""

    question_id: str
    question: str
    reference: str
    points: tuple[KeyPoint, ...]
    misconceptions: tuple[Misconception, ...] = ()
    topic: str = ""

    @classmethod
    def of_question(cls, q: Question, lang: str = "zh") -> Target:
        return cls(q.id, q.question.get(lang), q.reference_answer.get(lang), tuple(q.rubric),
                   tuple(q.misconceptions), q.topic)

    @classmethod
    def of_follow_up(cls, q: Question, f: FollowUp, lang: str = "zh") -> Target:
        return cls(q.id, f.question.get(lang), "", tuple(f.rubric), tuple(q.misconceptions), q.topic)

    @classmethod
    def of_probe(cls, q: Question, point: KeyPoint, lang: str = "zh") -> Target:
        return cls(q.id, point.probe.get(lang), point.point, (point,), tuple(q.misconceptions), q.topic)
