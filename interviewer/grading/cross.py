"""The cross-encoder: e5-small reading the target (question and key points) and the answer together.

The span scorer (``meaning.py``) compares vectors embedded apart, which cannot tell a statement from its negation, a
hedge from a claim, or an answer about a neighbouring topic from one about this one (issue 17, grading-notes). Here
the encoder reads ``query: <question> 要点：<points>`` and ``passage: <answer>`` as one sequence, so attention runs
across both. Low-rank adapters on every linear layer and an ordinal head were trained at development time on
labelled answers (``devtools/train_cross.py``, on a GPU); what ships is ``cross.npz`` (the adapters and the head, a
few MB) and runs on CPU on the same 4-bit base weights as the embedder (``interviewer.search.embedding``).

Its output is one signal for the band calibrator (``calibration.py``): the expected band 0–3 (不会 … 流畅).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # numpy alone at import: devtools/train_cross.py's GPU half uses ordinal_probabilities
    from interviewer.grading.contract import Target

ADAPTER = Path(__file__).with_name("cross.npz")
CONTEXT_TOKENS = 96  # the question and its points, opening kept
ANSWER_TOKENS = 224  # the answer's opening: a main answer of ~400 characters fits


def context_text(target: Target) -> str:
    """What the cross-encoder reads for the target: its question and the statements of its key points."""
    return f"{target.question} 要点：" + "；".join(p.point for p in target.points)


@lru_cache(maxsize=512)
def _context_ids(tokenizer, context: str) -> tuple[int, ...]:
    """A target's side of the pair, tokenised once (every answer to the target shares it)."""
    return tuple(tokenizer.encode("query: " + context)[:CONTEXT_TOKENS])


def pair_ids(tokenizer, bos: int, eos: int, context: str, answer: str) -> np.ndarray:
    """``<s> query: context </s></s> passage: answer </s>``, each side cut to its budget (XLM-R's pair layout)."""
    c = _context_ids(tokenizer, context)
    a = tokenizer.encode("passage: " + (answer.strip() or " "))[:ANSWER_TOKENS]
    return np.array([bos, *c, eos, eos, *a, eos], dtype=np.int64)


def ordinal_probabilities(score: float, cuts: np.ndarray) -> np.ndarray:
    """P(band = 不会, 卡顿, 基本, 流畅) from the cumulative logits P(band > k) = σ(score − cut_k)."""
    above = 1 / (1 + np.exp(-(score - np.asarray(cuts, np.float64))))
    cum = np.concatenate([[1.0], np.minimum.accumulate(above), [0.0]])
    return cum[:-1] - cum[1:]


class CrossScorer:
    """The trained cross-encoder: ``expected_band(target, answer)`` in 0–3."""

    def __init__(self, path: Path = ADAPTER) -> None:
        from interviewer.search.embedding import E5Model

        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        adapter = {k: v for k, v in arrays.items() if k.endswith((".a", ".b")) and not k.startswith("head.")}
        self.model = E5Model(adapter=adapter)
        self.head_w, self.head_b = arrays["head.w"].astype(np.float64), float(arrays["head.b"])
        self.cuts = arrays["head.cuts"].astype(np.float64)

    def score(self, target: Target, answer: str) -> float:
        f = self.model.file
        ids = pair_ids(self.model.tokenizer, f.bos, f.eos, context_text(target), answer)
        pooled = self.model.hidden(ids).mean(axis=0).astype(np.float64)
        return float(pooled @ self.head_w + self.head_b)

    def probabilities(self, target: Target, answer: str) -> np.ndarray:
        return ordinal_probabilities(self.score(target, answer), self.cuts)

    def expected_band(self, target: Target, answer: str) -> float:
        return float(self.probabilities(target, answer) @ np.arange(4))


@lru_cache(maxsize=1)
def load_cross(path: Path = ADAPTER) -> CrossScorer:
    """The shipped cross-encoder (loaded once: a second ONNX session over the embedder's 4-bit weights)."""
    return CrossScorer(path)


def expected_band(target: Target, answer: str) -> float:
    """The cross-encoder's expected band for the answer, 0 (不会) – 3 (流畅)."""
    return load_cross().expected_band(target, answer)
