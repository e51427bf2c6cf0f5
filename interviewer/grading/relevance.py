"""Whether an answer is about the question asked: the relevance signals and the off-topic gate.

An answer about another topic covers nothing, however right it is for that topic (issue 17). Keyword and meaning
coverage cannot tell: a dense answer about FlashAttention mentions HBM and bandwidth, so it "states" part of a
KV-cache point. What tells is where the answer's sentences sit among the whole bank's rubric texts (each target's
question, reference, points and phrasings, embedded once and shipped; ``calibration.rubric_texts``):

- the **rubric map margin** of a sentence is its best cosine with the asked question's own texts (the main question
  and all its follow-ups) minus its best cosine with the texts of questions of other families of topics (KsanaLLM's
  excluded: its source touches every topic, so no topic is "other" to it);
- the **topic margin** of the whole answer is the same on the older, coarser map of one vector per content question.

:class:`Gate` is a logistic model over those margins and the answer's best coverage, fitted at development time by
``devtools/train_off_topic.py`` (weights, threshold and the numbers that justified them in ``off_topic.json``) on
training answers labelled above 不会 and on answers about something else (good training answers put to a question of
another family, and note sections of another family). Never fitted on the blind split or on ``interviewer eval``'s
off-topic check, which pairs each question with another question's reference answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from interviewer.grading import meaning
from interviewer.grading.contract import Target, target_ids
from interviewer.knowledge.bank import Question, default_bank
from interviewer.knowledge.topics import family_of

GATE = Path(__file__).with_name("off_topic.json")
CONTENT_STAGES = ("technical", "drill")
# what the gate reads: the keyword coverage, the meaning scorer's mean and best P, "I don't know", the topic margin
# and the rubric map margins (share of sentences above 0, their mean and median, the whole answer's)
GATE_FEATURES = ("topic_margin", "kw_cov", "max_p", "me_p", "dont_know", "map_share", "map_mean", "map_median",
                 "map_answer")


def answer_vector(span_vecs: np.ndarray, singles: int) -> np.ndarray | None:
    """The answer as one unit vector: the mean of its sentence vectors (no second encoder run)."""
    if singles == 0:
        return None
    v = span_vecs[:singles].mean(0)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def cosines(answer_vec: np.ndarray | None, texts: tuple[str, str]) -> tuple[float, float]:
    """Cosines of the answer with the question and with the reference (each embedded once and cached)."""
    if answer_vec is None:
        return 0.0, 0.0
    vecs = meaning.ENCODER.vectors([t[:500] or " " for t in texts], cache=True)
    return float(vecs[0] @ answer_vec), float(vecs[1] @ answer_vec)


def topic_questions() -> list[Question]:
    return [q for q in default_bank().values() if q.stage in CONTENT_STAGES and not q.variant_of]


def question_text(q: Question) -> str:
    """What stands for a bank question on the topic map: its text and the opening of its reference answer."""
    return f"{q.question.zh} {q.reference_answer.zh[:200]}"


def target_texts(target: Target) -> list[str]:
    """A target's texts as the graders embed them: question, reference (or its points), each point and phrasings."""
    return [target.question[:500] or " ", (target.reference or " ".join(p.point for p in target.points))[:500] or " ",
            *[t for p in target.points for t in (p.point, *p.phrasings[:4])]]


@lru_cache(maxsize=1)
def topic_map() -> tuple[dict[str, int], np.ndarray, tuple[str, ...]]:
    """(question id → row, unit vectors, family per row) of the bank's content questions (their vectors ship in
    ``knowledge/vectors/bank-e5.npz``; see ``calibration.rubric_texts``)."""
    qs = topic_questions()
    vecs = meaning.ENCODER.vectors([question_text(q) for q in qs], cache=True) if qs else np.zeros((0, 384))
    return {q.id: i for i, q in enumerate(qs)}, vecs.astype(np.float64), tuple(family_of(q.topic) for q in qs)


@lru_cache(maxsize=1)
def rubric_map() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unit vectors, owning question id, its family, whether it is a content question) of every rubric text."""
    bank = default_bank()
    rows = [(text, q.id, family_of(q.topic), q.stage in CONTENT_STAGES) for q in bank.values()
            for tid, _kind, _text in target_ids(q) for text in target_texts(Target.of_ref(bank, tid))]
    vecs = meaning.ENCODER.vectors([r[0] for r in rows], cache=True).astype(np.float32)
    return vecs, *(np.array([r[i] for r in rows]) for i in (1, 2, 3))


def topic_margin(answer_vec: np.ndarray | None, question_id: str, topic: str) -> float:
    """How much closer the answer is to the question asked than to any question of another family of topics
    (KsanaLLM's questions excluded: its source touches every topic). Negative: it reads as about something else."""
    rows, vecs, families = topic_map()
    own = rows.get(question_id)
    if answer_vec is None or own is None:
        return 0.0
    cos = vecs @ answer_vec
    family = family_of(topic)
    others = [c for c, f in zip(cos, families) if f not in (family, "ksana")]
    return float(cos[own] - max(others)) if others else 0.0


def map_margins(sentence_vecs: np.ndarray, answer_vec: np.ndarray | None, target: Target) -> tuple[float, ...]:
    """The rubric map margins: (share of sentences closer to the question's own texts, their mean margin, median
    margin, the whole answer's margin); zeros when there is nothing to compare."""
    vecs, owner, family, content = rubric_map()
    own = owner == target.question_id
    other = content & (family != family_of(target.topic)) & (family != "ksana")
    if answer_vec is None or not len(sentence_vecs) or not own.any() or not other.any():
        return 0.0, 0.0, 0.0, 0.0
    cos = sentence_vecs.astype(np.float32) @ vecs.T
    m = cos[:, own].max(1) - cos[:, other].max(1)
    whole = vecs @ answer_vec.astype(np.float32)
    return float((m > 0).mean()), float(m.mean()), float(np.median(m)), float(whole[own].max() - whole[other].max())


@dataclass(frozen=True)
class Gate:
    """Logistic over standardised gate features: off-topic when the score exceeds the threshold."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float

    def score(self, x: np.ndarray) -> float:
        return float(((x - self.mean) / self.scale) @ self.weights + self.bias)

    def to_json(self, report: dict) -> str:
        return json.dumps({"features": list(GATE_FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                           "weights": self.weights.tolist(), "bias": self.bias, "threshold": self.threshold,
                           "report": report}, ensure_ascii=False, indent=1)


@lru_cache(maxsize=2)
def load_gate(path: Path = GATE) -> Gate | None:
    """The fitted gate, or None (none shipped, or fitted on other features): then no answer is called off-topic."""
    data = meaning.fitted_params(path, GATE_FEATURES)
    if data is None:
        return None
    return Gate(*(np.array(data[k], np.float64) for k in ("mean", "scale", "weights")), float(data["bias"]),
                float(data["threshold"]))


def fit_gate(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 3000, lr: float = 0.1) -> Gate:
    """Fit the logistic model (L2 on the weights) by gradient descent; ``y`` is 1 for an answer about something
    else. The threshold is left at 0 (the caller sets it from out-of-fold scores)."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        g = 1 / (1 + np.exp(-(z @ w + b))) - y
        w -= lr * (z.T @ g / len(y) + l2 * w / len(y))
        b -= lr * float(g.mean())
    return Gate(mean, scale, w, b, 0.0)


def off_topic(x: np.ndarray, gate: Gate | None = None) -> bool:
    """The gate vector ``x`` (``Signals.gate_vector``) reads as an answer about another topic ("I don't know" is
    never about another topic, however its few words happen to sit among the questions)."""
    gate = gate or load_gate()
    if gate is None or x[GATE_FEATURES.index("dont_know")]:
        return False
    return gate.score(x) > gate.threshold
