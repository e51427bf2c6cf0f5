"""Grading: the Grade contract, the offline rubric grader, the LLM grader, and how they combine.

The score is always computed in code from the rubric weights. The offline grader decides each key
point from the answer's own sentences (concept-group keywords, phrasing similarity), finds wrong
claims with the question's misconceptions and the fact registry, and caps gaming (instructions to
the grader, bare keyword lists, parroting). The LLM grader, when a model is configured, judges
each point with a verbatim quote that code verifies; any model failure falls back visibly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

from interviewer.grading import answer_text as at
from interviewer.knowledge.bank import BANDS, Fact, FollowUp, KeyPoint, Misconception, Question, load_facts

LOW_CONFIDENCE = 0.4
MISCONCEPTION_PENALTY = 12
PAIR_CREDIT = 0.8  # all concept groups named across two adjacent sentences
PARTIAL_CREDIT = 0.2  # at least half of the groups named in one sentence
PHRASING_MATCH = 0.55  # character-bigram similarity with an authored phrasing
SCORE_POWER = 0.85  # score = 100 × coverage^power


def band_of(score: float) -> str:
    """流畅 ≥ 85, 基本 60–84, 卡顿 30–59, 不会 < 30."""
    return "流畅" if score >= 85 else "基本" if score >= 60 else "卡顿" if score >= 30 else "不会"


def band_index(band: str) -> int:
    return BANDS.index(band)


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


class Citation(BaseModel):
    source: str
    heading: str

    @classmethod
    def from_note(cls, note: str) -> Citation:
        source, _, heading = note.partition(" § ")
        return cls(source=source.strip(), heading=heading.strip())


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


@lru_cache(maxsize=1)
def registry_misconceptions() -> tuple[Misconception, ...]:
    """Wrong claims from the fact registry (every verdict except confirmed)."""
    try:
        facts: list[Fact] = load_facts()
    except Exception:  # a missing registry must not stop grading
        return ()
    return tuple(Misconception(patterns=f.patterns, claim=f.claim, correction=f.correct, source=f.source)
                 for f in facts if f.verdict != "confirmed")


# ---------------------------------------------------------------- offline rubric grader

def _term_in(term: str, text: str) -> bool:
    term = at.clean_text(term)
    if not term:
        return False
    if term.isascii() and re.fullmatch(r"[a-z0-9_.+-]+", term) and len(term) <= 4:
        return re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", text) is not None
    return term in text


def _groups_matched(point: KeyPoint, text: str) -> float:
    hits = sum(1 for group in point.keywords if any(_term_in(t, text) for t in group))
    return hits / len(point.keywords)


def _phrasing_similarity(point: KeyPoint, text: str) -> float:
    best = 0.0
    for p in [point.point, point.point_en, *point.phrasings]:
        if p:
            a, b = at.bigrams(p), at.bigrams(text)
            if a and b:
                best = max(best, 2 * len(a & b) / (len(a) + len(b)) * min(1.0, len(b) / max(1, len(a))) ** 0.25)
    return best


def judge_point(point: KeyPoint, sents: list[at.Sentence]) -> PointResult:
    """Coverage of one key point: the best sentence (or pair of adjacent sentences) of the answer."""
    best, evidence = 0.0, ""
    for i, s in enumerate(sents):
        frac = _groups_matched(point, s.clean)
        cover = 1.0 if frac == 1 else 0.0
        if not cover and i + 1 < len(sents) and _groups_matched(point, s.clean + " " + sents[i + 1].clean) == 1:
            cover = PAIR_CREDIT
        if not cover and frac >= 0.5 and len(point.keywords) > 1:
            cover = PARTIAL_CREDIT
        if cover < 1 and _phrasing_similarity(point, s.clean) >= PHRASING_MATCH:
            cover = max(cover, PAIR_CREDIT)
        if cover > best:
            best, evidence = cover, s.raw
    return PointResult(point_id=point.id, point=point.point, covered=best, evidence=evidence[:300],
                       note=point.note, weight=point.weight)


def find_misconceptions(sents: list[at.Sentence], target: Target) -> list[MisconceptionFound]:
    found: list[MisconceptionFound] = []
    for m in (*target.misconceptions, *registry_misconceptions()):
        for s in sents:
            if any(re.search(p, s.clean, re.IGNORECASE) or re.search(p, s.raw, re.IGNORECASE) for p in m.patterns):
                if all(f.claim != m.claim for f in found):
                    found.append(MisconceptionFound(claim=m.claim, correction=m.correction, source=m.source,
                                                    evidence=s.raw[:300]))
                break
    return found


@dataclass
class Reading:
    """An answer read against a target: the sentences that count and the gaming flags."""

    content: list[at.Sentence]
    flags: list[str] = field(default_factory=list)


def read_answer(answer: str, target: Target) -> Reading:
    sents = at.sentences(answer)
    flags: list[str] = []
    if at.TAG.search(answer):
        flags.append("html")
    content = []
    for s in sents:
        if at.is_injection(s.clean):
            flags.append("injection")
        elif target.question and at.is_parroting(s.clean, at.clean_text(target.question)):
            flags.append("parroting")
        else:
            content.append(s)
    if content and at.looks_like_keyword_list(" ".join(s.raw for s in content)):
        flags.append("keyword_list")
    if at.says_dont_know(answer):
        flags.append("dont_know")
    return Reading(content, sorted(set(flags)))


def grade_offline(target: Target, answer: str, lang: str | None = None) -> Grade:
    """The deterministic rubric grader (no LLM)."""
    answer = at.normalize_answer(answer)
    lang = lang or at.language(answer)
    reading = read_answer(answer, target)
    points = [judge_point(p, reading.content) for p in target.points]
    if "keyword_list" in reading.flags:
        points = [p.model_copy(update={"covered": 0.0, "evidence": ""}) for p in points]
    score = coverage_score(points)
    wrong = find_misconceptions(reading.content, target)
    score -= MISCONCEPTION_PENALTY * len(wrong)
    if wrong:
        score = min(score, 59)
    score = int(round(max(0.0, min(100.0, score))))
    grade = Grade(question_id=target.question_id, score=score, band=band_of(score), points=points,
                  misconceptions=wrong, grader="offline", flags=reading.flags,
                  confidence=_offline_confidence(score, points, reading.flags))
    return finish(grade, lang)


def coverage_score(points: list[PointResult]) -> float:
    """100 × (weighted coverage)^SCORE_POWER, computed in code from the rubric weights."""
    total = sum(p.weight for p in points) or 1.0
    return 100 * (sum(p.weight * p.covered for p in points) / total) ** SCORE_POWER


def _offline_confidence(score: int, points: list[PointResult], flags: list[str]) -> float:
    edges = [30, 60, 85]
    margin = min(abs(score - e) for e in edges)
    partial = sum(1 for p in points if 0 < p.covered < 1) / max(1, len(points))
    conf = 0.55 + 0.35 * min(1.0, margin / 12) - 0.2 * partial
    return round(max(0.2, min(0.95, conf)), 2)


# ---------------------------------------------------------------- feedback and citations

def finish(grade: Grade, lang: str) -> Grade:
    """Fill feedback and citations from the points and misconceptions."""
    missed = [p for p in grade.points if p.covered < 0.75]
    cites: list[Citation] = []
    for p in missed:
        c = Citation.from_note(p.note)
        if c not in cites:
            cites.append(c)
    return grade.model_copy(update={"citations": cites, "feedback": feedback_text(grade, missed, lang)})


def feedback_text(grade: Grade, missed: list[PointResult], lang: str) -> str:
    covered = [p for p in grade.points if p.covered >= 0.75]
    zh = lang != "en"
    parts: list[str] = []
    if "injection" in grade.flags:
        parts.append("回答里对评分者的指令已忽略，只按内容评分。" if zh else
                     "Instructions addressed to the grader were ignored; only the content was graded.")
    if "keyword_list" in grade.flags:
        parts.append("只列关键词没有解释，不计分：请把机制讲出来。" if zh else
                     "A bare list of keywords earns no credit: explain the mechanism.")
    if "parroting" in grade.flags and not covered:
        parts.append("复述题目不算回答。" if zh else "Restating the question is not an answer.")
    if covered:
        names = "；".join(p.point for p in covered[:4])
        parts.append(f"讲到了：{names}。" if zh else f"Covered: {names}.")
    if missed:
        names = "；".join(p.point for p in missed[:4])
        parts.append(f"还缺：{names}。" if zh else f"Missing: {names}.")
    for m in grade.misconceptions[:2]:
        parts.append(f"有误：{m.claim} → {m.correction}（{m.source}）" if zh else
                     f"Incorrect: {m.claim} → {m.correction} ({m.source})")
    if grade.citations:
        where = "、".join(f"{c.source} § {c.heading}" for c in grade.citations[:3])
        parts.append(f"建议重读：{where}。" if zh else f"Re-read: {where}.")
    return " ".join(parts) or ("请先作答。" if zh else "Please answer the question.")


# ---------------------------------------------------------------- LLM grader

class LLMPointVerdict(BaseModel):
    id: str = Field(description="the key point id")
    verdict: Literal["covered", "partial", "missing"]
    quote: str = Field(default="", description="verbatim quote from the candidate answer, or empty")


class LLMGradeOutput(BaseModel):
    """Structured output the model returns; code computes the score."""

    points: list[LLMPointVerdict]
    misconceptions: list[str] = Field(default_factory=list, description="wrong claims found, as short statements")
    feedback: str = ""


VERDICT_VALUE = {"covered": 1.0, "partial": 0.5, "missing": 0.0}


def quote_is_verbatim(quote: str, answer: str) -> bool:
    squash = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
    return bool(quote.strip()) and squash(quote) in squash(answer)


def llm_prompt(target: Target, answer: str, lang: str) -> str:
    from interviewer.prompts import fence, render

    rubric = "\n".join(f"- id={p.id} weight={p.weight}: {p.point}" for p in target.points)
    return render("grade", question=target.question, reference=target.reference or "（见评分要点）",
                  rubric=rubric, answer=fence(answer), lang="中文" if lang == "zh" else "English")


def grade_with_llm(target: Target, answer: str, model, lang: str | None = None) -> Grade:
    """Grade with a chat model; raises on any model failure (callers fall back)."""
    answer = at.normalize_answer(answer)
    lang = lang or at.language(answer)
    structured = model.with_structured_output(LLMGradeOutput, method="function_calling")
    out = structured.invoke(llm_prompt(target, answer, lang))
    if not isinstance(out, LLMGradeOutput):
        out = LLMGradeOutput.model_validate(out)
    verdicts = {v.id: v for v in out.points}
    reading = read_answer(answer, target)
    content = " ".join(s.raw for s in reading.content)  # instructions to the grader and parroting are not evidence
    points = []
    for p in target.points:
        v = verdicts.get(p.id)
        covered = VERDICT_VALUE[v.verdict] if v else 0.0
        quote = v.quote if v else ""
        if covered and not quote_is_verbatim(quote, content):
            covered, quote = 0.0, ""  # a fabricated quote (or one from an injected instruction) earns nothing
        points.append(PointResult(point_id=p.id, point=p.point, covered=covered, evidence=quote[:300],
                                  note=p.note, weight=p.weight))
    if "keyword_list" in reading.flags:
        points = [p.model_copy(update={"covered": 0.0}) for p in points]
    score = coverage_score(points)
    wrong = find_misconceptions(reading.content, target)
    score = max(0.0, score - MISCONCEPTION_PENALTY * len(wrong))
    if wrong:
        score = min(score, 59)
    score = int(round(score))
    grade = Grade(question_id=target.question_id, score=score, band=band_of(score), points=points,
                  misconceptions=wrong, grader="llm", flags=reading.flags, confidence=0.8)
    return finish(grade, lang)


def grade_answer(target: Target, answer: str, model=None, lang: str | None = None, offline: Grade | None = None) -> Grade:
    """One grade: offline always (``offline`` if already computed); with a model, the LLM grade checked against it."""
    offline = offline or grade_offline(target, answer, lang)
    if model is None:
        return offline
    try:
        llm = grade_with_llm(target, answer, model, lang)
    except Exception as exc:  # any model failure: the offline grade, said out loud
        from interviewer.models import describe_model_error

        reason = describe_model_error(exc)
        return offline.model_copy(update={
            "grader": "offline (fallback)",
            "notice": f"{reason}，本题已改用离线评分。" if (lang or "zh") != "en" else f"{reason}; graded offline instead.",
        })
    gap = abs(band_index(llm.band) - band_index(offline.band))
    if gap > 1:  # far apart (a model talked round by the answer, or keywords fooled): the lower grade stands
        low = min((llm, offline), key=lambda g: g.score)
        return low.model_copy(update={"grader": "llm+offline", "confidence": LOW_CONFIDENCE,
                                      "flags": sorted(set(llm.flags) | set(offline.flags) | {"graders_disagree"})})
    confidence = 0.85 if gap == 0 else 0.65
    return llm.model_copy(update={"grader": "llm+offline", "confidence": confidence, "flags": sorted(set(llm.flags))})
