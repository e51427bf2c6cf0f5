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


@register("combined")
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
    if gap > 1:  # far apart (a model talked round by the answer, or keywords fooled): the lower grade stands
        low = min((llm, offline), key=lambda g: g.score)
        return low.model_copy(update={"grader": "llm+offline", "confidence": LOW_CONFIDENCE,
                                      "flags": sorted(set(llm.flags) | set(offline.flags) | {"graders_disagree"})})
    confidence = 0.85 if gap == 0 else 0.65
    return llm.model_copy(update={"grader": "llm+offline", "confidence": confidence, "flags": sorted(set(llm.flags))})
