"""Fit the off-topic gate (``interviewer/grading/relevance.py``, saved in ``off_topic.json``) and report it.

    python -m devtools.train_off_topic

About something else (1): training answers put to a question of another family (``swapped_rows``) and note sections
of another family (``off_topic_rows``, another draw than the calibrator's). On topic (0): the training answers
labelled above 不会. The threshold is the one that flags FALSE_ALARMS of the on-topic answers out of fold (5 folds):
an on-topic answer called off-topic drops to 不会. The dev split is measured, never fitted; the blind split and
``interviewer eval``'s off-topic check (another question's reference answer) are neither.
"""

from __future__ import annotations

import time

import numpy as np

from devtools.evaluation import load_labelled
from devtools.train_calibrator import load_train, off_topic_rows, swapped_rows
from interviewer.grading import relevance
from interviewer.grading.contract import Target
from interviewer.grading.offline import judge_answer
from interviewer.knowledge.bank import default_bank

FALSE_ALARMS = 0.02  # the old rule (topic margin, no point stated) flagged 0.024 of them and caught 0.88 of the swapped
FOLDS = 5


def gate_vectors(rows: list[dict]) -> np.ndarray:
    bank = default_bank()
    out = []
    for r in rows:
        judged = judge_answer(Target.of_ref(bank, r.get("target_id") or r["question_id"]), r["answer"], signals=True)
        assert judged.signals is not None
        out.append(judged.signals.gate_vector())
    return np.stack(out)


def out_of_fold(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    scores = np.zeros(len(y))
    for part in np.array_split(idx, FOLDS):
        rest = np.setdiff1d(idx, part)
        gate = relevance.fit_gate(x[rest], y[rest])
        scores[part] = [gate.score(v) for v in x[part]]
    return scores


def flagged(gate: relevance.Gate, x: np.ndarray) -> float:
    return round(float(np.mean([relevance.off_topic(v, gate) for v in x])), 3) if len(x) else 0.0


def main() -> int:
    started = time.perf_counter()
    on_topic = [r for r in load_train() if r["band"] != "不会"]
    about_else = swapped_rows() + off_topic_rows(seed=3)
    x = gate_vectors(on_topic + about_else)
    y = np.r_[np.zeros(len(on_topic)), np.ones(len(about_else))]
    oof = out_of_fold(x, y)
    threshold = float(np.quantile(oof[y == 0], 1 - FALSE_ALARMS))
    fitted = relevance.fit_gate(x, y)
    gate = relevance.Gate(fitted.mean, fitted.scale, fitted.weights, fitted.bias, threshold)
    checks = {"dev answers above 不会 (flagged)": [r for r in load_labelled() if r["split"] == "dev" and r["band"] != "不会"],
              "swapped, another draw (caught)": swapped_rows(seed=11), "note sections, another draw (caught)": off_topic_rows(seed=4)}
    report = {"fitted_on": {"on_topic": len(on_topic), "swapped": sum(r["id"].startswith("swap-") for r in about_else),
                            "notes": sum(r["id"].startswith("off-") for r in about_else)},
              "out_of_fold": {"on_topic_flagged": round(float(np.mean(oof[y == 0] > threshold)), 3),
                              "about_else_caught": round(float(np.mean(oof[y == 1] > threshold)), 3)},
              **{name: flagged(gate, gate_vectors(rows)) for name, rows in checks.items()}}
    print({f: round(float(w), 2) for f, w in zip(relevance.GATE_FEATURES, gate.weights)}, round(gate.bias, 2), round(threshold, 2))
    print(report)
    relevance.GATE.write_text(gate.to_json(report) + "\n", encoding="utf-8")
    print(f"wrote {relevance.GATE} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
