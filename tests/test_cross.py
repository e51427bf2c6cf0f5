"""The grader's cross-encoder (``interviewer/grading/cross.py``): the adapter graph is wired as trained (a low-rank
delta on each linear layer), the shipped adapter loads, and it reads answers the way its training says it should."""

from __future__ import annotations

import numpy as np
import pytest

from interviewer.grading import cross
from interviewer.grading.contract import Target
from interviewer.knowledge.bank import default_bank
from interviewer.search.embedding import E5Model


def test_a_zero_adapter_leaves_the_encoder_unchanged_and_a_delta_moves_it():
    base = E5Model()
    ids = np.array([base.file.bos, *base.tokenizer.encode("query: 为什么 decode 是访存密集"), base.file.eos])
    h = base.hidden(ids)
    zero = {"l0.q.a": np.ones((4, 384), np.float32), "l0.q.b": np.zeros((384, 4), np.float32)}
    assert np.allclose(E5Model(adapter=zero).hidden(ids), h, atol=1e-5)
    nudged = dict(zero, **{"l0.q.b": np.full((384, 4), 1e-3, np.float32)})
    assert not np.allclose(E5Model(adapter=nudged).hidden(ids), h, atol=1e-4)


@pytest.fixture(scope="module")
def scorer():
    if not cross.ADAPTER.exists():
        pytest.fail(f"{cross.ADAPTER} is missing: train it with devtools/train_cross.py (see its docstring)")
    return cross.load_cross()


def test_probabilities_are_a_distribution(scorer):
    t = Target.of_ref(default_bank(), "kv_cache")
    p = scorer.probabilities(t, "KV Cache 缓存历史 token 的 K 和 V，decode 时每步只算新 token。")
    assert p.shape == (4,) and abs(p.sum() - 1) < 1e-6 and (p >= 0).all()
    assert 0 <= scorer.expected_band(t, "") <= 3


def test_the_reference_answer_reads_above_dont_know_and_above_another_topics_reference(scorer):
    """Over the bank's main technical questions: its own reference answer reads higher than "不知道" and higher than
    the reference answer of a question of another topic family, for nearly every question."""
    from interviewer.knowledge.topics import family_of

    bank = default_bank()
    qs = sorted((q for q in bank.values() if q.stage == "technical" and not q.variant_of), key=lambda q: q.id)[::4]
    own_wins = other_wins = 0
    for i, q in enumerate(qs):
        t = Target.of_ref(bank, q.id)
        other = next(o for o in qs[i + 1:] + qs[:i] if family_of(o.topic) not in (family_of(q.topic), "ksana"))
        own = scorer.expected_band(t, q.reference_answer.zh)
        own_wins += own > scorer.expected_band(t, "这个我不太清楚，没怎么看过。")
        other_wins += own > scorer.expected_band(t, other.reference_answer.zh)
    assert own_wins >= 0.9 * len(qs) and other_wins >= 0.9 * len(qs), (own_wins, other_wins, len(qs))
