"""Fit the coverage-by-meaning scorer (``interviewer/grading/scorer.json``) and say what it is worth.

    python -m devtools.train_scorer [--report-only]

Training data: ``eval/grading/pairs/*.jsonl`` — candidate answers with a label for every key point (covered,
partial, hedged, wrong, absent) and the verbatim evidence, written at development time without the rubric's
keywords — and the training answers of ``eval/grading/train/`` labelled point by point (``train/points/``: written
blind, a third of them typed; added in session 14). Each labelled point becomes span examples: the span holding the
evidence gets the label's value (covered 1, partial and hedged 0.5, wrong 0) and, for an absent point, every span is
a 0.
The two thresholds that turn P into coverage (1 / 0.5 / 0) are chosen on exact band agreement over the dev split
and the pairs' own answers (both development data). The heldout and blind splits are measured, never used.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from devtools.evaluation import EVAL_DIR, PARTS, agreement, load_labelled, read_jsonl
from interviewer.grading.contract import Target
from interviewer.grading.meaning import ENCODER, FEATURES, SCORER, Scorer, fit_logistic, load_scorer
from interviewer.knowledge.bank import default_bank

VALUE = {"covered": 1.0, "partial": 0.5, "hedged": 0.5, "wrong": 0.0}
GRID = [round(x, 2) for x in np.arange(0.2, 0.95, 0.05)]
PAIRS_DIR = EVAL_DIR / "grading" / "pairs"
TRAIN_POINTS_DIR = EVAL_DIR / "grading" / "train" / "points"


def load_pairs() -> list[dict]:
    return read_jsonl(PAIRS_DIR.glob("*.jsonl"))


def load_train_points() -> list[dict]:
    """The training answers (``eval/grading/train/``) whose key points were labelled one by one (``train/points/``),
    in the pairs' shape: written blind, many of them typed, so the span scorer learns more than one way of writing."""
    from devtools.train_calibrator import load_train

    train = {r["id"]: r for r in load_train()}
    return [dict(train[r["id"]], points=r["points"]) for r in read_jsonl(TRAIN_POINTS_DIR.glob("*.jsonl"))
            if r["id"] in train]


def span_examples(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and soft labels for every labelled (span, point)."""
    from interviewer.grading.offline import point_span_features, read_answer

    bank = default_bank()
    xs, ys = [], []
    for r in rows:
        target = Target.of_ref(bank, r["target_id"])
        reading = read_answer(r["answer"], target)
        labels = {p["id"]: p for p in r["points"]}
        for point in target.points:
            lab = labels.get(point.id)
            if lab is None:
                continue
            spans, x = point_span_features(target, point, reading)
            if not spans:
                continue
            if lab["label"] == "absent":
                xs.append(x)
                ys += [0.0] * len(spans)
                continue
            ev = lab.get("evidence", "")
            hits = [i for i, s in enumerate(spans) if ev and ev.strip() and (ev.strip() in s.raw)]
            if not hits:
                continue
            best = min(hits, key=lambda i: len(spans[i].raw))  # the tightest span holding the evidence
            xs.append(x[best:best + 1])
            ys.append(VALUE[lab["label"]])
    return np.concatenate(xs), np.array(ys, dtype=np.float64)


def predicted_bands(rows: list[dict], scorer: Scorer | None) -> list[str]:
    from interviewer.grading.offline import grade_offline

    bank = default_bank()
    return [grade_offline(Target.of_ref(bank, r.get("target_id") or r["question_id"]), r["answer"], scorer=scorer, calibrated=False).band
            for r in rows]


def choose_thresholds(mean, scale, w, b, rows: list[dict]) -> tuple[float, float, float]:
    """(covered_at, partial_at, exact) maximising exact band agreement on ``rows`` (dev, and the pairs' answers)."""
    best = (0.0, 0.0, -1.0)
    for covered_at in GRID:
        for partial_at in [g for g in GRID if g < covered_at]:
            exact = agreement(rows, predicted_bands(rows, Scorer(mean, scale, w, b, covered_at, partial_at)))["exact"]
            if exact > best[2]:
                best = (covered_at, partial_at, exact)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report-only", action="store_true", help="measure the saved scorer, fit nothing")
    args = parser.parse_args(argv)
    ENCODER.cache_spans = True  # the same answers are read many times while the thresholds are chosen
    labelled = load_labelled()
    splits = {s: [r for r in labelled if r["split"] == s] for s in ("dev", "heldout", "blind")}
    if not args.report_only:
        started = time.perf_counter()
        x, y = span_examples(load_pairs() + load_train_points())
        mean, scale, w, b = fit_logistic(x, y)
        print(f"fitted on {len(y)} span examples ({int((y == 1).sum())} covered, {int((y == 0.5).sum())} partial/hedged, "
              f"{int((y == 0).sum())} not) in {time.perf_counter() - started:.1f} s")
        print("weights:", {f: round(float(v), 2) for f, v in zip(FEATURES, w)})
        pairs_as_rows = [{"band": r["band"], "target_id": r["target_id"], "answer": r["answer"], "question_id": r["target_id"].split("/")[0]}
                         for r in load_pairs()]
        covered_at, partial_at, dev_exact = choose_thresholds(mean, scale, w, b, splits["dev"] + pairs_as_rows)
        scorer = Scorer(mean, scale, w, b, covered_at, partial_at)
    else:
        scorer = load_scorer()
    report = {}
    baseline = {name: agreement(rows, predicted_bands(rows, None))["exact"] for name, rows in splits.items()}
    print("keyword grader (baseline) exact:", baseline)
    for name, rows in splits.items():
        bands = predicted_bands(rows, scorer)
        for part, keep in PARTS:
            idx = [i for i, r in enumerate(rows) if keep(r)]
            if idx:
                a = agreement([rows[i] for i in idx], [bands[i] for i in idx])
                report[name + part] = {k: a[k] for k in ("n", "exact", "within_one", "qwk", "recall")}
                print(f"{name + part:<18} n={a['n']:<4} exact {a['exact']:.3f}  ±1 {a['within_one']:.3f}  QWK {a['qwk']:.3f}  {a['recall']}")
    if not args.report_only:
        report["fitted_on"] = {"span_examples": int(len(y)), "pairs_files": [p.name for p in sorted(PAIRS_DIR.glob("*.jsonl"))],
                               "train_points_files": [p.name for p in sorted(TRAIN_POINTS_DIR.glob("*.jsonl"))],
                               "thresholds_chosen_on": "exact band agreement on dev + the pairs' answers", "exact_there": dev_exact,
                               "baseline_keyword_grader": baseline}
        SCORER.write_text(scorer.to_json(report), encoding="utf-8")
        print(f"wrote {SCORER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
