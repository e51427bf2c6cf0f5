"""The LLM grader: a chat model judges each key point and must quote the answer verbatim; code checks every
quote, computes the score from the rubric weights and keeps the offline grader's wrong-claim and gaming checks.
Any model failure raises, so the caller can fall back visibly."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from interviewer.bands import band_of
from interviewer.grading import answer_text as at
from interviewer.grading.claims import wrong_claims
from interviewer.grading.contract import Grade, PointResult, Target
from interviewer.grading.meaning import load_scorer
from interviewer.grading.offline import Reading, finish, penalised_score, point_span_features, read_answer
from interviewer.messages import language_name
from interviewer.models import bounded


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
                  rubric=rubric, answer=fence(answer), lang=language_name(lang))


SUPPORT_FLOOR = 0.1  # meaning-scorer P below which a quote does not support its point (kept 98.7% of labelled
# evidence, rejected 64% of unrelated sentences on the training pairs — in-sample, so it errs towards the model)


MAX_POINTS_PER_QUOTE = 2  # one sentence quoted for more points than this is not evidence for them


def quote_support(target: Target, point, quote: str) -> float:
    """How strongly the quoted sentence(s) state the point, as the meaning scorer reads them (1.0 without a scorer)."""
    scorer = load_scorer()
    if scorer is None:
        return 1.0
    spans, x = point_span_features(target, point, Reading(at.sentences(quote)))
    return float(scorer.probability(x).max()) if spans else 0.0


def grade_with_llm(target: Target, answer: str, model, lang: str | None = None) -> Grade:
    """Grade with a chat model; raises on any model failure (callers fall back). A point counts only with a quote
    that is verbatim in the answer's content and is about that point; a failed quote is flagged."""
    answer = at.normalize_answer(answer)
    lang = lang or at.language(answer)
    structured = bounded(model, "grade").with_structured_output(LLMGradeOutput, method="function_calling")
    out = structured.invoke(llm_prompt(target, answer, lang))
    if not isinstance(out, LLMGradeOutput):
        out = LLMGradeOutput.model_validate(out)
    verdicts = {v.id: v for v in out.points}
    reading = read_answer(answer, target)
    content = " ".join(s.raw for s in reading.content)  # instructions to the grader and parroting are not evidence
    points, flags = [], set(reading.flags)
    for p in target.points:
        v = verdicts.get(p.id)
        covered = VERDICT_VALUE[v.verdict] if v else 0.0
        quote = v.quote if v else ""
        if covered and not quote_is_verbatim(quote, content):
            covered, quote = 0.0, ""  # a fabricated quote (or one from an injected instruction) earns nothing
            flags.add("fabricated_quote")
        elif covered and quote_support(target, p, quote) < SUPPORT_FLOOR:
            covered, quote = 0.0, ""  # a real sentence, but not about this point
            flags.add("unsupported_quote")
        points.append(PointResult(point_id=p.id, point=p.point, covered=covered, evidence=quote[:300],
                                  note=p.note, weight=p.weight))
    quoted = [p.evidence for p in points if p.covered and p.evidence]
    if any(quoted.count(q) > MAX_POINTS_PER_QUOTE for q in quoted):
        flags.add("reused_quote")  # one sentence cannot be the evidence for everything
    if "keyword_list" in reading.flags:
        points = [p.model_copy(update={"covered": 0.0}) for p in points]
    wrong = wrong_claims(reading.content, target)  # the same wrong claims as the offline grader's
    score = penalised_score(points, wrong)
    grade = Grade(question_id=target.question_id, score=score, band=band_of(score), points=points,
                  misconceptions=wrong, grader="llm", flags=sorted(flags), confidence=0.8)
    return finish(grade, lang)
