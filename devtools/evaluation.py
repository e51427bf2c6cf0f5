"""``interviewer eval``: retrieval quality, grader calibration, and scripted interviews, against targets.

Reads the labelled sets under ``eval/`` and the thresholds in ``eval/targets.toml``; prints a report
(or JSON) and exits non-zero when a target is missed.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

import yaml

from interviewer.bands import BANDS, band_index
from interviewer.config import Settings
from interviewer.grading.contract import Target
from interviewer.grading.offline import grade_offline
from interviewer.grading.registry import grade_answer
from interviewer.knowledge.bank import default_bank
from interviewer.knowledge.topics import family_of

EVAL_DIR = Path(__file__).resolve().parent.parent / "eval"
ADVERSARIAL = {"injection_zh", "injection_en", "keyword_stuffing", "padding", "parroting", "html"}


def load_targets() -> dict:
    return tomllib.loads((EVAL_DIR / "targets.toml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- retrieval

def load_queries() -> list[dict]:
    """Every retrieval query, each with the name of its file (``file``)."""
    rows: list[dict] = []
    for p in sorted((EVAL_DIR / "retrieval").glob("*.yaml")):
        rows.extend({**q, "file": p.name} for q in yaml.safe_load(p.read_text(encoding="utf-8")) or [])
    return rows


def _hit_rank(results, expected: list[str]) -> int | None:
    for rank, r in enumerate(results, 1):
        if any(r.address == e or r.address.startswith(e + " › ") for e in expected):
            return rank
    return None


def eval_retrieval(settings: Settings, k: int = 5) -> dict:
    from interviewer.search.retrieval import Retriever
    from interviewer.services import ensure_index

    ensure_index(settings)
    retriever = Retriever(settings)
    queries = load_queries()
    report: dict = {"queries": len(queries), "modes": {}}
    for mode in ("dense", "lexical", "hybrid"):
        ranks = [_hit_rank(retriever.search(q["query"], k=k, mode=mode), q["expected"]) for q in queries]
        by_kind: dict[str, list] = {}
        for q, r in zip(queries, ranks):
            by_kind.setdefault(q.get("kind", "?"), []).append(r)
        report["modes"][mode] = {
            "hit_at_5": round(sum(1 for r in ranks if r) / len(ranks), 3),
            "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
            "by_kind": {kind: round(sum(1 for r in rs if r) / len(rs), 3) for kind, rs in by_kind.items()},
            "misses": [q["query"] for q, r in zip(queries, ranks) if not r][:10],
        }
        if mode == "hybrid":  # the notes of the seed study plan vs the 专题 notes of content v2 (targets.toml)
            v2 = set(load_targets().get("retrieval_v2", {}).get("files", []))
            for split, in_v2 in (("seed_notes", False), ("v2_notes", True)):
                rs = [r for q, r in zip(queries, ranks) if (q["file"] in v2) == in_v2]
                if rs:
                    report[split] = {"queries": len(rs), "hit_at_5": round(sum(1 for r in rs if r) / len(rs), 3),
                                     "mrr": round(sum(1 / r for r in rs if r) / len(rs), 3)}
    return report


# ---------------------------------------------------------------- grading

SPLITS = ("dev", "heldout", "blind")
FOLLOW_UP_KINDS = {"follow_up", "probe"}
# Each split is reported whole, then main questions and follow-ups (follow-ups and probes) apart.
PARTS = (("", lambda r: True), ("/main", lambda r: r.get("target_kind", "question") == "question"),
         ("/follow_up", lambda r: r.get("target_kind") in FOLLOW_UP_KINDS))


def read_jsonl(paths) -> list[dict]:
    """Every row of the given JSON-lines files, in sorted path order."""
    return [json.loads(line) for p in sorted(paths) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_labelled(blind: bool = True) -> list[dict]:
    """The labelled answers: ``grading/*.jsonl`` (dev, heldout) and, with ``blind``, the batches in ``grading/blind/``
    (written without the rubric in sight, labelled blind; see eval/grading/blind/README.md)."""
    return (read_jsonl((EVAL_DIR / "grading").glob("*.jsonl"))
            + (read_jsonl((EVAL_DIR / "grading" / "blind").glob("*.jsonl")) if blind else []))


def quadratic_weighted_kappa(truth: list[int], pred: list[int], n: int = 4) -> float:
    if not truth:
        return 0.0
    observed = [[0] * n for _ in range(n)]
    for t, p in zip(truth, pred):
        observed[t][p] += 1
    total = len(truth)
    hist_t, hist_p = Counter(truth), Counter(pred)
    num = den = 0.0
    for i in range(n):
        for j in range(n):
            w = (i - j) ** 2 / (n - 1) ** 2
            expected = hist_t[i] * hist_p[j] / total
            num += w * observed[i][j]
            den += w * expected
    return round(1 - num / den, 3) if den else 1.0


def agreement(rows: list[dict], predicted: list[str]) -> dict:
    truth = [band_index(r["band"]) for r in rows]
    pred = [band_index(b) for b in predicted]
    matrix = {t: {p: 0 for p in BANDS} for t in BANDS}
    for r, b in zip(rows, predicted):
        matrix[r["band"]][b] += 1
    recall = {b: round(matrix[b][b] / sum(matrix[b].values()), 3) if sum(matrix[b].values()) else None for b in BANDS}
    breaches = [r["id"] for r, b in zip(rows, predicted) if r.get("kind") in ADVERSARIAL and band_index(b) > band_index(r["band"])]
    n = len(rows) or 1
    return {"n": len(rows), "exact": round(sum(t == p for t, p in zip(truth, pred)) / n, 3),
            "within_one": round(sum(abs(t - p) <= 1 for t, p in zip(truth, pred)) / n, 3),
            "qwk": quadratic_weighted_kappa(truth, pred), "recall": recall, "confusion": matrix,
            "breaches": breaches}


def eval_grading(model=None, grader_name: str = "offline") -> dict:
    """Agreement per split, and within each split for main questions and follow-ups (follow-ups and probes) apart."""
    bank = default_bank()
    rows = load_labelled()
    from interviewer.grading.registry import grader as named

    grader = (lambda t, a: grade_answer(t, a, model)) if model is not None else (lambda t, a: named(grader_name)(t, a))
    predicted = [grader(Target.of_ref(bank, r.get("target_id") or r["question_id"]), r["answer"]).band for r in rows]
    report = {"grader": "llm" if model is not None else grader_name,
              "all": agreement([r for r in rows if r["split"] != "blind"], [p for r, p in zip(rows, predicted) if r["split"] != "blind"])}
    for split in SPLITS:
        for part, keep in PARTS:
            idx = [i for i, r in enumerate(rows) if r.get("split") == split and keep(r)]
            if idx or not part:
                report[split + part] = agreement([rows[i] for i in idx], [predicted[i] for i in idx])
    report["off_topic"] = eval_off_topic(grader)
    report["errors"] = [{"id": r["id"], "kind": r.get("kind"), "label": r["band"], "got": p}
                        for r, p in zip(rows, predicted) if r["band"] != p]
    return report


def off_topic_pairs(bank) -> list[tuple[str, str]]:
    """(target id, answer): every question, follow-up and probe answered with the reference answer of the next
    technical question (in id order) of another family of topics (never KsanaLLM, whose source touches them all)."""
    from interviewer.grading.contract import target_ids

    qs = sorted(bank.values(), key=lambda q: q.id)
    pairs = []
    for i, q in enumerate(qs):
        family = family_of(q.topic)
        other = next(o for o in qs[i + 1:] + qs[:i] if o.stage == "technical" and family_of(o.topic) not in (family, "ksana"))
        pairs += [(tid, other.reference_answer.zh) for tid, _kind, _text in target_ids(q)]
    return pairs


def eval_off_topic(grader=None) -> dict:
    """Share of off-topic answers graded 不会 (target ≥ 0.99), and the ones that were not."""
    bank = default_bank()
    grader = grader or grade_offline
    pairs = off_topic_pairs(bank)
    misses = []
    for tid, answer in pairs:
        band = grader(Target.of_ref(bank, tid), answer).band
        if band != "不会":
            misses.append({"target": tid, "got": band})
    return {"n": len(pairs), "graded_dont_know": round(1 - len(misses) / max(1, len(pairs)), 3), "misses": misses[:20]}


# ---------------------------------------------------------------- scripted interviews

def eval_interviews(settings: Settings) -> dict:
    from devtools.candidates import run_scripted_candidates

    return run_scripted_candidates(settings)


# ---------------------------------------------------------------- report

def check_targets(report: dict, targets: dict) -> list[str]:
    failures = []
    if "retrieval" in report:
        r = report["retrieval"]
        seed = r.get("seed_notes", r["modes"]["hybrid"])
        for key in ("hit_at_5", "mrr"):
            if seed[key] < targets["retrieval"][key]:
                failures.append(f"retrieval {key} {seed[key]} < {targets['retrieval'][key]}")
        t2 = targets.get("retrieval_v2", {})
        for key in ("hit_at_5", "mrr") if "v2_notes" in r and t2 else ():
            if r["v2_notes"][key] < t2[key]:
                (failures if t2.get("enforced") else report.setdefault("not_enforced", [])).append(
                    f"retrieval v2 notes {key} {r['v2_notes'][key]} < {t2[key]} (issue 15)")
    if "grading" in report:
        g, t = report["grading"], targets["grading"]
        for split in ("dev", "heldout"):
            for key in ("exact", "within_one", "qwk"):
                if g[split][key] < t[key]:
                    failures.append(f"grading {split} {key} {g[split][key]} < {t[key]}")
        for split, key, want, got in blind_gaps(g, targets.get("grading_blind", {})):
            (failures if targets["grading_blind"].get("enforced") else report.setdefault("not_enforced", [])).append(
                f"grading {split} {key} {got} < {want} (blind split, issue 17)")
        if len(g["all"]["breaches"]) > t["breaches"]:
            failures.append(f"grading breaches {len(g['all']['breaches'])} > {t['breaches']}")
    if "interviews" in report:
        failures += [f"interview {name}: {f}" for name, r in report["interviews"].items() for f in r["failures"]]
    return failures


def blind_gaps(g: dict, t: dict) -> list[tuple[str, str, float, float]]:
    """(split, metric, target, measured) for every blind-split figure below its target."""
    gaps = []
    if t and "off_topic" in g and g["off_topic"]["graded_dont_know"] < t["off_topic"]:
        gaps.append(("off-topic", "share graded 不会", t["off_topic"], g["off_topic"]["graded_dont_know"]))
    for split in ("blind/main", "blind/follow_up"):
        if split not in g or not t:
            continue
        for key in ("exact", "within_one"):
            if g[split][key] < t[key]:
                gaps.append((split, key, t[key], g[split][key]))
        gaps += [(split, f"recall {band}", t["band_recall"], r) for band, r in g[split]["recall"].items()
                 if r is not None and r < t["band_recall"]]
    return gaps


def _print_report(report: dict, failures: list[str]) -> None:
    if "retrieval" in report:
        r = report["retrieval"]
        print(f"Retrieval ({r['queries']} queries)        hit@5    MRR")
        for mode, m in r["modes"].items():
            print(f"  {mode:<8}                       {m['hit_at_5']:.3f}  {m['mrr']:.3f}   by kind: {m['by_kind']}")
        for split in ("seed_notes", "v2_notes"):
            if split in r:
                print(f"  hybrid on {split:<10} ({r[split]['queries']:>3})   {r[split]['hit_at_5']:.3f}  {r[split]['mrr']:.3f}")
        for q in r["modes"]["hybrid"]["misses"]:
            print(f"  miss (hybrid): {q}")
    if "grading" in report:
        g = report["grading"]
        print(f"\nGrading ({g['grader']})   n    exact  ±1     QWK")
        for split in [k for k in g if k.split("/")[0] in (*SPLITS, "all")]:
            a = g[split]
            print(f"  {split:<16} {a['n']:<4} {a['exact']:.3f}  {a['within_one']:.3f}  {a['qwk']:.3f}   recall {a['recall']}")
        print("  confusion (rows = label, cols = grader: " + " ".join(BANDS) + ")")
        for label, row in g["all"]["confusion"].items():
            print(f"    {label}  " + " ".join(f"{row[b]:>4}" for b in BANDS))
        print(f"  adversarial breaches: {len(g['all']['breaches'])} {g['all']['breaches'][:10]}")
        if "off_topic" in g:
            o = g["off_topic"]
            print(f"  off-topic answers graded 不会: {o['graded_dont_know']} of {o['n']}  e.g. {o['misses'][:3]}")
    if "interviews" in report:
        print("\nScripted interviews")
        for name, r in report["interviews"].items():
            print(f"  {name:<22} {'ok' if not r['failures'] else 'FAIL'}  turns={r['turns']} score={r['score']}  {r['failures'][:3]}")
    for gap in report.get("not_enforced", []):
        print(f"  below target, not enforced yet: {gap}")
    print("\nTargets: " + ("all met" if not failures else "MISSED:\n  " + "\n  ".join(failures)))


def run_eval(settings: Settings, which: str = "all", as_json: bool = False, with_model: bool = False, grader: str = "offline") -> int:
    from interviewer.services import quiet_environment

    quiet_environment()
    report: dict = {}
    if which in ("all", "retrieval"):
        report["retrieval"] = eval_retrieval(settings)
    if which in ("all", "grading"):
        report["grading"] = eval_grading(grader_name=grader)
        if with_model:
            from interviewer.models import build_chat_model

            model = build_chat_model(settings)
            if model is None:
                print("no model configured: skipping the LLM grader", file=sys.stderr)
            else:
                report["grading_llm"] = eval_grading(model)
    if which in ("all", "interviews"):
        report["interviews"] = eval_interviews(settings)
    failures = check_targets(report, load_targets())
    if as_json:
        print(json.dumps({**report, "failures": failures}, ensure_ascii=False, indent=2))
    else:
        _print_report(report, failures)
    return 1 if failures else 0
