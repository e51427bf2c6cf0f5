"""Coverage by meaning: does a span of the answer state this key point, judged by a small trained scorer.

The ``meaning`` grader (``grading/registry.py``) uses it; the default offline grader does not yet — on answers
written against the rubric's words it is weaker (see ``scorer.json``'s report and issue 17).

For each key point the answer is read as spans (each sentence and each pair of adjacent sentences). A span gets
features — e5 similarity to the point's statement, its phrasings and the question; the rubric's keyword groups and
character-bigram similarity (the old signals, now only inputs); hedge and negation cues; length — and a logistic
model fitted at development time (``devtools/train_scorer.py``; weights and the numbers that justified them in
``scorer.json``) turns them into P(the span states the point correctly). The point's coverage is that of its best
span, and that span is its evidence. The encoder is the search encoder (multilingual-e5-small, CPU).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from interviewer.grading import answer_text as at
from interviewer.knowledge.bank import KeyPoint
from interviewer.resources import KNOWLEDGE_DIR
from interviewer.search.embedding import active_engine
from interviewer.search.shipped import shipped_vectors

SCORER = Path(__file__).with_name("scorer.json")
SHIPPED_TEXTS = KNOWLEDGE_DIR / "vectors" / "bank-e5.npz"  # the bank's texts as the graders embed them (shipped)
# 大概 / 估计 right before a number round it ("大概 128 KiB"); they hedge only elsewhere ("大概是这样")
HEDGE = re.compile(r"好像|记不(太)?清|应该是|(?:大概|估计)(?![是要在有就约为]{0,2}\s*[~～≈]?\s*[\d一二两三四五六七八九十百千万])"
                   r"|可能是?|不太确定|不确定|我猜|印象中|也许|似乎|maybe|probably|i think|not sure|i guess", re.I)
NEGATION = re.compile(r"不是|并非|并不|不会|没有|不能|不用|无需|不需要|而不是|not |isn'?t|doesn'?t|don'?t|never|no longer", re.I)
FEATURES = ("cos_point", "cos_phrasing", "cos_question", "cos_point_x_lex", "groups", "all_groups", "bigram", "hedge",
            "negation", "short", "pair", "dont_know", "margin_question")


@dataclass(frozen=True)
class Span:
    raw: str
    clean: str
    pair: bool


def spans_of(sents: list[at.Sentence]) -> list[Span]:
    """Every sentence, and every two adjacent sentences together."""
    out = [Span(s.raw, s.clean, False) for s in sents]
    out += [Span(a.raw + b.raw, a.clean + " " + b.clean, True) for a, b in zip(sents, sents[1:])]
    return out


def text_key(text: str) -> str:
    """A text's key among the shipped vectors: the engine and the exact text embedded (with the query prefix)."""
    return hashlib.sha1(f"{active_engine()}|query|{text}".encode()).hexdigest()


def shipped_texts() -> dict[str, np.ndarray]:
    return shipped_vectors(SHIPPED_TEXTS)


class Encoder:
    """Unit vectors for texts (``query:`` prefix on both sides: a symmetric comparison), cached per text."""

    def __init__(self, model=None, cache_spans: bool = False) -> None:
        self._model = model
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.cache_spans = cache_spans  # development only (fitting thresholds re-reads the same answers many times)

    def model(self):
        if self._model is None:
            from interviewer.search.index import E5Embedding

            self._model = E5Embedding.model()
        return self._model

    def vectors(self, texts: list[str], cache: bool = False) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache] if cache else list(dict.fromkeys(texts))
        shipped = shipped_texts() if cache and todo else {}
        keys = {t: text_key(t) for t in todo} if shipped else {}
        found = {t: shipped[k] for t, k in keys.items() if k in shipped}
        todo = [t for t in todo if t not in found]
        fresh = {**found, **dict(zip(todo, self.model().embed(todo, is_query=True)))} if todo else found
        if cache:
            with self._lock:
                self._cache.update(fresh)
        table = {**self._cache, **fresh} if cache else fresh
        return np.stack([table[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def span_vectors(encoder: Encoder, spans: list[Span]) -> np.ndarray:
    """Sentence vectors embedded once; a pair is the normalised sum of its two sentences (no second encoder run)."""
    singles = [s for s in spans if not s.pair]
    vecs = encoder.vectors([s.raw[:300] for s in singles], cache=encoder.cache_spans) if singles else np.zeros((0, 384), dtype=np.float32)
    pairs = [vecs[i] + vecs[i + 1] for i in range(len(singles) - 1)]
    allv = np.concatenate([vecs, np.stack(pairs)]) if pairs else vecs
    return allv / np.maximum(np.linalg.norm(allv, axis=1, keepdims=True), 1e-12)


def features(point: KeyPoint, spans: list[Span], vecs: np.ndarray, point_vecs: np.ndarray, question_vec: np.ndarray,
             groups, bigram, dont_know: bool) -> np.ndarray:
    """``[len(spans), len(FEATURES)]``: the features of every span for one point. ``point_vecs[0]`` is the
    statement, the rest its phrasings; ``groups(text)`` and ``bigram(text)`` are the rubric's lexical signals."""
    rows = []
    for s, v in zip(spans, vecs):
        cos_point = float(v @ point_vecs[0])
        cos_phr = float((point_vecs @ v).max())
        cos_q = float(v @ question_vec)
        g = groups(s.clean)
        rows.append([cos_point, cos_phr, cos_q, cos_point * g, g, float(g == 1.0), bigram(s.clean),
                     float(bool(HEDGE.search(s.raw))), float(bool(NEGATION.search(s.raw))),
                     float(len(s.clean) < 12), float(s.pair), float(dont_know), cos_phr - cos_q])
    return np.array(rows, dtype=np.float32).reshape(len(spans), len(FEATURES))


@dataclass(frozen=True)
class Scorer:
    """A logistic model over standardised features."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    covered_at: float  # P above which a point counts as covered (1.0)
    partial_at: float  # P above which it counts as partly covered (0.5)

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return 1 / (1 + np.exp(-np.clip(z, -30, 30)))

    def coverage(self, p: float) -> float:
        return 1.0 if p >= self.covered_at else 0.5 if p >= self.partial_at else 0.0

    def to_json(self, report: dict) -> str:
        return json.dumps({"features": list(FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                           "weights": self.weights.tolist(), "bias": self.bias, "covered_at": self.covered_at,
                           "partial_at": self.partial_at, "report": report}, ensure_ascii=False, indent=1)


ENCODER = Encoder()


@dataclass(frozen=True)
class MeaningReading:
    """The answer's spans (sentences and adjacent pairs) and their unit vectors, embedded once per answer."""

    spans: list[Span]
    vecs: np.ndarray
    singles: int  # the first ``singles`` spans are single sentences

    @classmethod
    def of(cls, sentences: list[at.Sentence], limit: int | None = None) -> MeaningReading:
        sents = sentences[:limit] if limit else sentences
        spans = spans_of(sents)
        vecs = span_vectors(ENCODER, spans) if spans else np.zeros((0, 384), dtype=np.float32)
        return cls(spans, vecs, len(sents))


def fitted_params(path: Path, features: tuple[str, ...]) -> dict | None:
    """A fitted model's saved parameters, or None when the file is missing, unreadable or fitted on other features."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if data.get("features") == list(features) else None


@lru_cache(maxsize=2)
def load_scorer(path: Path = SCORER) -> Scorer | None:
    """The fitted scorer, or None when there is none (or it was fitted on other features): the grader then uses
    the lexical signals alone."""
    data = fitted_params(path, FEATURES)
    if data is None:
        return None
    return Scorer(np.array(data["mean"], np.float32), np.array(data["scale"], np.float32), np.array(data["weights"], np.float32),
                  float(data["bias"]), float(data["covered_at"]), float(data["partial_at"]))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 3000, lr: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, weights, bias) of an L2-regularised logistic regression on soft labels ``y`` ∈ [0, 1]."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    n = len(y)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / n + l2 * w / n
        grad_b = float((p - y).mean())
        w -= lr * grad_w
        b -= lr * grad_b
    return mean, scale, w, b


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))
