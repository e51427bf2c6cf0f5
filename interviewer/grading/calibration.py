"""The band of a whole answer as an expert would give it: an ordinal model over answer-level signals.

The rubric points decide what the answer covers and quote the evidence; whether that adds up to 流畅, 基本, 卡顿 or
不会 depends on more than the covered weight — how the answer reads by meaning (the trained span scorer of
``meaning.py``), the cross-encoder's reading of question, points and answer together (``cross.py``), wrong claims,
hedging, length, how close it stays to the question and the reference, and the kind of target (a main question, a
follow-up, a one-point probe). Keyword coverage alone over-grades answers written in the
candidate's own words and under-grades correct paraphrases (issue 17).

:class:`Calibrator` is a cumulative-logit model: one linear score ``s = w · z`` over standardised signals and three
cut points, band = how many cuts ``s`` exceeds. It is fitted at development time (``devtools/train_calibrator.py``)
on the dev split and on answers written without the rubric in sight and labelled blind (``eval/grading/train/``);
the weights and the numbers that justified them are in ``calibrator.json``. Never fitted on the blind split.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from interviewer.bands import BANDS, THRESHOLDS, band_index
from interviewer.grading import meaning, relevance
from interviewer.grading.contract import Target, target_ids
from interviewer.knowledge.bank import Question
from interviewer.messages import say

CALIBRATOR = Path(__file__).with_name("calibrator.json")
RELEVANT_P = 0.2  # a sentence whose best point P (meaning scorer) reaches this counts toward the answer's length
MAX_SENTENCES = 24  # sentences read by meaning (e5 costs ≈15 ms each on 2 cores); a longer answer is read up to here
FEATURES = ("kw_cov", "me_p", "me_cov", "n_wrong", "hedge_share", "hedge_any", "dont_know", "log_len", "rel_q",
            "rel_ref", "is_main", "is_follow", "is_probe", "n_points", "kwlist", "parrot", "top_kw", "min_kw", "max_p",
            "min_p", "kw_score", "me_score", "en", "topic_margin", "cross")


@dataclass(frozen=True)
class Signals:
    """What the grader read from one answer, before any band is decided."""

    kind: str  # "question", "follow_up" or "probe"
    weights: np.ndarray  # the rubric points' weights
    kw_covered: np.ndarray  # per point, keyword coverage (0–1) after flags, numbers and wrong-claim evidence
    me_probability: np.ndarray  # per point, the meaning scorer's P for its best span
    me_covered: np.ndarray  # per point, that P thresholded (0, 0.5, 1)
    kw_score: int  # the rubric score from keyword coverage (penalties included)
    me_score: int  # the rubric score from meaning coverage (penalties included)
    wrong: int  # wrong claims found
    hedged: int  # content sentences with a hedge
    sentences: int
    chars: int  # characters of the sentences that state some point at least in part
    dont_know: bool
    keyword_list: bool
    parroting: bool
    english: bool
    rel_question: float  # cosine of the answer (mean of its sentence vectors) with the question
    rel_reference: float  # … with the reference (or the points)
    topic_margin: float  # cosine with its own question minus the best cosine with a question of another topic family
    cross: float  # the cross-encoder's expected band, 0 (不会) – 3 (流畅) (``cross.py``)
    map_margins: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # ``relevance.map_margins``: read by the off-topic gate only

    def vector(self) -> np.ndarray:
        w = self.weights / max(float(self.weights.sum()), 1e-9)
        heavy = int(np.argmax(w))
        return np.array([
            float(w @ self.kw_covered), float(w @ self.me_probability), float(w @ self.me_covered), self.wrong,
            self.hedged / max(1, self.sentences), float(self.hedged > 0), float(self.dont_know),
            math.log1p(self.chars), self.rel_question, self.rel_reference, float(self.kind == "question"),
            float(self.kind == "follow_up"), float(self.kind == "probe"), len(self.weights), float(self.keyword_list),
            float(self.parroting), float(self.kw_covered[heavy]), float(self.kw_covered.min()),
            float(self.me_probability.max()), float(self.me_probability.min()), self.kw_score / 100, self.me_score / 100,
            float(self.english), self.topic_margin, self.cross], dtype=np.float64)

    def gate_vector(self) -> np.ndarray:
        """What the off-topic gate reads (``relevance.GATE_FEATURES``)."""
        x = dict(zip(FEATURES, self.vector()))
        return np.array([x["topic_margin"], x["kw_cov"], x["max_p"], x["me_p"], x["dont_know"], *self.map_margins])


@dataclass(frozen=True)
class Calibrator:
    """Cumulative logit over standardised features: band index = number of cut points the score exceeds."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    cuts: np.ndarray  # three increasing cut points: 不会|卡顿, 卡顿|基本, 基本|流畅

    def score(self, x: np.ndarray) -> float:
        return float(((x - self.mean) / self.scale) @ self.weights)

    def band_index(self, x: np.ndarray) -> int:
        return int((self.score(x) > self.cuts).sum())

    def to_json(self, report: dict) -> str:
        return json.dumps({"features": list(FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                           "weights": self.weights.tolist(), "cuts": self.cuts.tolist(), "report": report},
                          ensure_ascii=False, indent=1)


@lru_cache(maxsize=2)
def load_calibrator(path: Path = CALIBRATOR) -> Calibrator | None:
    """The fitted calibrator, or None (none shipped, or fitted on other features): bands then come from the score."""
    data = meaning.fitted_params(path, FEATURES)
    if data is None:
        return None
    return Calibrator(*(np.array(data[k], np.float64) for k in ("mean", "scale", "weights", "cuts")))


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 4000, lr: float = 0.1,
        sample_weight: np.ndarray | None = None) -> Calibrator:
    """Fit the cumulative-logit model (L2 on the weights) by gradient descent; ``y`` holds band indexes 0–3."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    n = float(sw.sum())
    w, cuts = np.zeros(z.shape[1]), np.array([-1.0, 0.0, 1.0])
    above = (y[:, None] > np.arange(3)[None, :]).astype(float)
    for _ in range(steps):
        s = z @ w
        p = 1 / (1 + np.exp(-(s[:, None] - cuts[None, :])))
        g = (p - above) * sw[:, None]
        w -= lr * (z.T @ g.sum(1) / n + l2 * w / n)
        cuts = np.sort(cuts + lr * g.sum(0) / n)
    return Calibrator(mean, scale, w, cuts)


def rubric_texts(bank: dict[str, Question]) -> list[str]:
    """Every text the graders embed for the bank's targets (``cache=True``), so they can ship as vectors: each
    target's question, each point with its first phrasings, the reference the relevance signal reads, and each
    content question as the topic map reads it."""
    out: list[str] = [relevance.question_text(q) for q in relevance.topic_questions()]
    for q in bank.values():
        for tid, _kind, _text in target_ids(q):
            t = Target.of_ref(bank, tid)
            out += [*relevance.target_texts(t), *(t.question or p.point for p in t.points)]
    return list(dict.fromkeys(out))


GAMING = {"injection", "keyword_list", "html"}


def calibrated_band(calibrator: Calibrator, x: np.ndarray, keyword_band: str, flags: list[str], wrong: bool,
                    about_else: bool = False) -> str:
    """The calibrator's band for signal vector ``x``, within the rules no model may break: an answer flagged for
    gaming (instructions, a bare keyword list, markup) or stating a wrong claim is never lifted above its keyword
    reading (which caps a wrong claim at 卡顿), and an answer about another topic (``about_else``, the gate of
    ``relevance.py``) is 不会."""
    band = BANDS[calibrator.band_index(x)]
    if (wrong or GAMING & set(flags)) and band_index(band) > band_index(keyword_band):
        return keyword_band
    if about_else:
        return "不会"
    return band


def within_band(score: int, band: str) -> int:
    """The rubric score moved to the nearest score inside ``band`` (流畅 85–100, 基本 60–84, 卡顿 30–59, 不会 0–29)."""
    floor = next(f for f, b in THRESHOLDS if b == band)
    ceiling = min([f - 1 for f, b in THRESHOLDS if f > floor], default=100)
    return max(floor, min(ceiling, score))


def band_note(keyword_band: str, band: str, hedged: int, chars: int, about_else: bool, lang: str) -> str:
    """Why the band differs from what the points' words alone would give (empty when it does not)."""
    if about_else:
        return say("fb_off_topic", lang)
    if band_index(band) > band_index(keyword_band):
        return say("fb_band_higher" if band in ("基本", "流畅") else "fb_band_higher_part", lang, band=band)
    if band_index(band) == band_index(keyword_band):
        return ""
    why = "why_hedged" if hedged else "why_short" if chars < 60 else "why_meaning"
    return say("fb_band_lower", lang, band=band, why=say(why, lang))
