"""``interviewer bench``: how fast and how big, with p50/p95, beside the targets in eval/targets.toml [bench].

Measures index builds (the built-in notes into a fresh dir; synthetic chunks for 10× scale), an
incremental re-index of unchanged notes, hybrid search (query embedding included), the offline grader
over the labelled answers, full offline turns (``Interviewer.send``), the app's cold start to its first
page, prompt tokens per model call at turns 1/10/40 beside a resend-the-whole-history baseline, 50 paced
sessions at once, throughput with no pause, and peak memory. Misses are reported, never fatal: the exit
code is 0 unless a measurement itself failed. ``--quick`` shrinks every size (and says so) for a CI smoke run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from devtools.bench_engine import bench_cold_start, bench_load, bench_model_turns, bench_practice, bench_throughput, bench_tokens, bench_turns
from devtools.bench_index import (
    FULL,
    HIGHER_IS_BETTER,
    QUICK,
    Sizes,
    _say,
    bench_grade,
    bench_index_builtin,
    bench_reindex,
    bench_search,
    bench_synthetic,
    peak_mem_mb,
    queries,
    ready_data_dir,
)
from interviewer.config import Settings

ROWS = [  # key, label, unit
    ("index_build_s", "index build, built-in notes, fresh dir", "s"),
    ("synthetic_build_s", "index build, synthetic chunks", "s"),
    ("reindex_unchanged_s", "incremental re-index, notes unchanged", "s"),
    ("search_p95_ms", "search p95 (query embedding included)", "ms"),
    ("synthetic_search_p95_ms", "search p95 over the synthetic index", "ms"),
    ("grade_p95_ms", "offline grade p95 (labelled answers)", "ms"),
    ("turn_p95_ms", "full offline turn p95 (Interviewer.send)", "ms"),
    ("cold_start_s", "app cold start to first page", "s"),
    ("tokens_turn1", "prompt tokens per model call, turn 1", "tok"),
    ("tokens_turn10", "prompt tokens per model call, turn 10", "tok"),
    ("tokens_turn40", "prompt tokens per model call, turn 40", "tok"),
    ("load50_p95_ms", "paced sessions at once, turn p95", "ms"),
    ("throughput_turns_s", "throughput, no pause", "turns/s"),
    ("review_plan_p95_ms", "review plan from a ledger of 10,000 graded points, p95", "ms"),
    ("progress_p95_ms", "progress summary from the same ledger, p95", "ms"),
    ("peak_mem_mb", "peak memory (max RSS)", "MB"),
]


def judge(figures: dict, targets: dict) -> dict[str, bool]:
    met = {}
    for key, target in targets.items():
        value = figures.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        met[key] = value >= target if key in HIGHER_IS_BETTER else value <= target
    return met


def scaling_notes(f: dict) -> list[str]:
    lines = []
    if f.get("search_p95_ms") is not None and f.get("synthetic_search_p95_ms") is not None:
        ratio = f["synthetic_chunks"] / max(1, f.get("index_builtin_chunks") or 1)
        lines.append(f"notes ×{ratio:.1f} ({f.get('index_builtin_chunks')} → {f['synthetic_chunks']} chunks): search p95 "
                     f"{f['search_p95_ms']} → {f['synthetic_search_p95_ms']} ms "
                     f"(×{f['synthetic_search_p95_ms'] / max(0.1, f['search_p95_ms']):.2f}); BM25 reload "
                     f"{f.get('synthetic_bm25_load_s')} s")
    if f.get("index_ms_per_chunk") and f.get("index_builtin_chunks"):
        per = f.get("synthetic_ms_per_chunk") or f["index_ms_per_chunk"]
        lines.append(f"index build is linear in chunks (embedding dominates): {per:.0f} ms/chunk, so 10× the built-in notes "
                     f"({10 * f['index_builtin_chunks']} chunks) ≈ {10 * f['index_builtin_chunks'] * per / 1000:.0f} s; "
                     f"re-indexing unchanged notes embeds nothing ({f.get('reindex_unchanged_s')} s)")
    if f.get("tokens_turn40") and f.get("tokens_turn1"):
        lines.append(f"turns ×40 (turn 1 → 10 → 40): prompt tokens per call stay flat ({f['tokens_turn1']} at turn 1, "
                     f"{f.get('tokens_turn10')} at 10, {f['tokens_turn40']} at 40) while resending the history grows "
                     f"({f.get('baseline_tokens_turn1')} → {f.get('baseline_tokens_turn10')} → {f.get('baseline_tokens_turn40')}, "
                     f"×{f['baseline_tokens_turn40'] / max(1, f['tokens_turn40']):.1f} at turn 40)")
    if f.get("long_turn_p50_ms_first4") is not None:
        lines.append(f"turn latency over a {f.get('tokens_turns_run')}-turn interview (stub model): p50 "
                     f"{f['long_turn_p50_ms_first4']} ms (turns 1–4) → {f['long_turn_p50_ms_last4']} ms (last 4), "
                     f"×{f['long_turn_p50_ms_last4'] / max(0.1, f['long_turn_p50_ms_first4']):.2f}")
    if f.get("model_follow_up_prefetch_p50_ms") is not None:
        lines.append(f"with a model ({f['model_call_s']} s per call, stub server): a turn that ends in a follow-up takes p50 "
                     f"{f['model_follow_up_prefetch_p50_ms']} ms with the follow-up worded during grading vs "
                     f"{f.get('model_follow_up_sequential_p50_ms')} ms one call after the other (guesses {f.get('prefetch')}, "
                     f"{f.get('model_follow_up_turns')} of {f.get('model_turns')} turns ended in a follow-up)")
    if f.get("throughput_turns_s") and f.get("load_offered_turns_s"):
        lines.append(f"{f.get('load_sessions')} sessions answering every {f.get('load_pause_s')} s offer "
                     f"{f['load_offered_turns_s']} turns/s against a capacity of ~{f['throughput_turns_s']} turns/s")
    return lines


def print_report(f: dict, targets: dict, met: dict, quick: bool) -> None:
    print(f"Benchmarks{' (--quick: reduced sizes, see notes)' if quick else ''}  ·  {os.cpu_count()} CPUs  ·  Python "
          f"{sys.version.split()[0]}")
    print(f"{'':68} {'p50':>8} {'value':>14} {'target':>7}  met")
    p50 = {"search_p95_ms": "search_p50_ms", "synthetic_search_p95_ms": "synthetic_search_p50_ms", "grade_p95_ms": "grade_p50_ms",
           "turn_p95_ms": "turn_p50_ms", "load50_p95_ms": "load50_p50_ms"}
    for key, label, unit in ROWS:
        value = f.get(key)
        if key == "index_build_s":
            label += f" ({f.get('index_build_embedded')}/{f.get('index_builtin_chunks')} chunks"
            label += ", projected)" if f.get("index_build_projected") else ")"
        if key == "synthetic_build_s":
            label += f" ({f.get('synthetic_chunks')})"
        if key == "load50_p95_ms":
            label = f"{f.get('load_sessions')} sessions, 1 answer/{f.get('load_pause_s')} s, turn p95"
        shown = "—" if value is None else f"{value} {unit}"
        target = targets.get(key)
        mark = "" if key not in met else ("yes" if met[key] else "MISS")
        tgt = "" if target is None else (f"≥{target}" if key in HIGHER_IS_BETTER else f"≤{target}")
        print(f"{label[:68]:68} {str(f.get(p50.get(key, ''), '')):>8} {shown:>14} {tgt:>7}  {mark}")
        if key == "tokens_turn40" and f.get("baseline_tokens_turn40") is not None:
            print(f"{'  whole-history baseline (every earlier message resent), turns 1/10/40':68} {'':>8} "
                  f"{f.get('baseline_tokens_turn1')}/{f.get('baseline_tokens_turn10')}/{f.get('baseline_tokens_turn40')} tok")
    print("\nHow it scales (measured here):")
    for line in scaling_notes(f):
        print(f"  - {line}")
    for note in f.get("notes", []):
        print(f"note: {note}")
    misses = [k for k, ok in met.items() if not ok]
    print("\nTargets: " + ("all met" if not misses else "MISSED " + ", ".join(misses)) + " (eval/targets.toml [bench])")
    for name, err in f.get("errors", {}).items():
        print(f"ERROR in {name}: {err}")


def run_bench(settings: Settings, as_json: bool = False, quick: bool = False) -> int:
    """Run every measurement and print them (a table, or one JSON object). 0 unless a measurement failed."""
    from interviewer.services import quiet_environment

    quiet_environment()
    figures = measure(settings, QUICK if quick else FULL, quick)
    emit(figures, as_json)
    return 1 if figures["errors"] else 0


def emit(figures: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
    else:
        print_report(figures, figures["targets"], figures["met"], figures["quick"])


def measure(settings: Settings, sizes: Sizes, quick: bool = False) -> dict:
    """Every figure, judged against eval/targets.toml [bench]; failed measurements are listed under ``errors``."""
    from devtools.evaluation import load_targets

    targets = load_targets().get("bench", {})
    figures: dict = {"quick": quick, "notes": [], "errors": {}}
    if quick:
        figures["notes"].append(f"--quick: built-in index build embeds {sizes.builtin_sample} chunks and projects the rest; "
                                f"{sizes.synthetic_chunks} synthetic chunks instead of 10,000; {sizes.load_sessions} paced "
                                f"sessions × {sizes.load_turns} turns every {sizes.load_pause_s} s instead of 50 × 20 every 5 s")
    work = Path(tempfile.mkdtemp(prefix="interviewer-bench-"))
    started = time.perf_counter()

    def step(name: str, fn: Callable[[], object]) -> object:
        _say(f"{name} …")
        t0 = time.perf_counter()
        try:
            return fn()
        except Exception as exc:  # one failed measurement does not hide the others
            figures["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
            _say(f"{name} FAILED: {exc}")
            return None
        finally:
            _say(f"{name} done in {time.perf_counter() - t0:.1f} s")

    try:
        step("index build (built-in notes)", lambda: bench_index_builtin(work, sizes, figures))
        ready = step("working index", lambda: ready_data_dir(settings, work, figures))
        qs = queries(sizes)
        retriever = None
        if ready is not None:
            from interviewer.engine.session import Interviewer
            from interviewer.search.retrieval import Retriever

            step("incremental re-index", lambda: bench_reindex(ready, figures))
            retriever = Retriever(ready)

            def search() -> None:
                s = bench_search(retriever, qs)
                figures.update(search_n=s["n"], search_p50_ms=s["p50"], search_p95_ms=s["p95"])

            step("search", search)
        step(f"index build ({sizes.synthetic_chunks} synthetic chunks)", lambda: bench_synthetic(work, sizes, qs, figures))
        step("offline grade", lambda: bench_grade(figures, sizes.grade_answers))
        if ready is not None:
            interviewer = Interviewer(ready, retriever)
            step("offline turns", lambda: bench_turns(interviewer, sizes, figures))
            step("prompt tokens (turns 1/10/40)", lambda: bench_tokens(ready, retriever, sizes, figures))
            step("model turns (stub server)", lambda: bench_model_turns(ready, retriever, sizes, figures))
            step(f"load ({sizes.load_sessions} paced sessions)", lambda: bench_load(interviewer, sizes, figures))
            step("throughput", lambda: bench_throughput(interviewer, sizes, figures))
            step("app cold start", lambda: bench_cold_start(ready, work, figures))
        step("practice (10,000 graded points)", lambda: bench_practice(work, figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["peak_mem_mb"] = peak_mem_mb()
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    met = judge(figures, targets)
    figures["targets"] = targets
    figures["met"] = met
    figures["misses"] = [k for k, ok in met.items() if not ok]
    figures["scaling"] = scaling_notes(figures)
    return figures
