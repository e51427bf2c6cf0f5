"""Graders by name, and the combined grade the engine uses.

A grader is any callable ``(target, answer, model, lang) -> Grade`` registered here with :func:`register`.
``offline`` needs no model; ``meaning`` is the offline grader judging points with the trained scorer
(experimental, issue 17); ``llm`` raises on any model failure; ``combined`` is the offline grade, or with a model
the LLM grade checked against it (the one the engine, the CLI and ``eval --with-model`` use).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from interviewer.bands import band_index
from interviewer.grading.contract import Grade, Target
from interviewer.grading.llm import grade_with_llm
from interviewer.grading.meaning import load_scorer
from interviewer.grading.offline import grade_offline
from interviewer.messages import say

LOW_CONFIDENCE = 0.4
DOUBTFUL = {"fabricated_quote", "unsupported_quote", "reused_quote", "injection", "keyword_list", "parroting"}


class Grader(Protocol):
    def __call__(self, target: Target, answer: str, model=None, lang: str | None = None) -> Grade: ...


GRADERS: dict[str, Grader] = {}


def register(name: str) -> Callable[[Grader], Grader]:
    """Decorator: make a grader available by ``name``."""
    def add(fn: Grader) -> Grader:
        GRADERS[name] = fn
        return fn
    return add


def grader(name: str) -> Grader:
    try:
        return GRADERS[name]
    except KeyError:
        raise KeyError(f"no grader {name!r}; known: {', '.join(sorted(GRADERS))}") from None


register("offline")(lambda target, answer, model=None, lang=None: grade_offline(target, answer, lang))
register("llm")(lambda target, answer, model=None, lang=None: grade_with_llm(target, answer, model, lang))
register("meaning")(lambda target, answer, model=None, lang=None: grade_offline(target, answer, lang, scorer=load_scorer()))


def lift_is_supported(target: Target, llm: Grade, offline: Grade) -> bool:
    """A model two bands above the offline grade must show it: every point it credits that the offline grader
    did not is quoted with sentence(s) the meaning scorer reads as at least partly stating it."""
    from interviewer.grading.llm import quote_support

    scorer = load_scorer()
    floor = scorer.partial_at if scorer else 0.0
    by_id = {p.point_id: p for p in offline.points}
    points = {p.id: p for p in target.points}
    lifted = [p for p in llm.points if p.covered > by_id.get(p.point_id, p).covered]
    return all(quote_support(target, points[p.point_id], p.evidence) >= floor for p in lifted if p.point_id in points)


@register("combined")  # the offline grade; with a model, the model's grade decided by its verified evidence
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
            "notice": say("fb_fallback", lang or "zh", reason=reason),
        })
    gap = abs(band_index(llm.band) - band_index(offline.band))
    doubtful = set(llm.flags) & DOUBTFUL
    if gap > 1 and llm.score > offline.score and not doubtful and not lift_is_supported(target, llm, offline):
        doubtful = {"weak_evidence"}
    if doubtful:  # the model's evidence failed or is too weak, or the answer games the grader: the lower grade stands
        low = min((llm, offline), key=lambda g: g.score)
        return low.model_copy(update={"grader": "llm+offline", "confidence": LOW_CONFIDENCE if gap > 1 else 0.55,
                                      "flags": sorted(set(llm.flags) | set(offline.flags) | doubtful | ({"graders_disagree"} if gap else set()))})
    confidence = 0.85 if gap == 0 else 0.65 if gap == 1 else 0.55  # verified evidence: the model's grade stands
    return llm.model_copy(update={"grader": "llm+offline", "confidence": confidence,
                                  "flags": sorted(set(llm.flags) | ({"graders_disagree"} if gap > 1 else set()))})
