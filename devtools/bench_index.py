"""Sizes, timing helpers and the index half of ``interviewer bench``: building the built-in index, re-indexing
unchanged notes, hybrid search, a synthetic index for scale, and the offline grader."""

from __future__ import annotations

import hashlib
import math
import random
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from interviewer.config import Settings

ROOT = Path(__file__).resolve().parent.parent  # the checkout: bench starts app.py from it
HIGHER_IS_BETTER = {"throughput_turns_s"}
ANSWERS = [  # mixed quality, so turns go through probes, deeper follow-ups and the next main question
    "KV cache 把历史 token 的 K 和 V 存下来，decode 时只为新 token 算 Q、K、V，显存随长度线性增长。",
    "我理解大概和显存管理有关，具体机制记不太全，主要是为了提高吞吐。",
    "PagedAttention 把 KV 切成固定大小的 block，用 block table 把逻辑块映射到物理块，按需分配，减少碎片。",
    "continuous batching 每轮迭代后重新组 batch，完成的请求立刻退出，新请求马上补进来。",
    "FlashAttention 分块计算，用 online softmax，不把 N×N 的注意力矩阵写回 HBM，所以省显存带宽。",
    "TP 切的是层内的矩阵，通信多，适合单机 NVLink；PP 切层，有流水线气泡，适合跨机。",
]


@dataclass(frozen=True)
class Sizes:
    synthetic_chunks: int
    builtin_sample: int | None  # None: embed every built-in chunk
    search_queries: int | None  # None: every eval/retrieval query
    turn_sessions: int
    load_sessions: int
    load_turns: int
    load_pause_s: float
    throughput_sessions: int
    throughput_turns: int
    long_turns: int = 40
    model_turns: int = 16  # per session, in the model-turn bench
    grade_answers: int | None = None  # None: grade every labelled answer; else an even spread of this many


FULL = Sizes(10_000, None, None, 3, 50, 20, 5.0, 50, 20)
QUICK = Sizes(300, 48, 40, 1, 10, 6, 1.0, 10, 6, model_turns=8)
REQUIRED = ("search_p95_ms", "grade_p95_ms", "turn_p95_ms", "load50_p95_ms", "throughput_turns_s", "cold_start_s",
            "reindex_unchanged_s", "tokens_turn1", "tokens_turn40", "baseline_tokens_turn40", "peak_mem_mb")


# ---------------------------------------------------------------- small helpers


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0–100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50": round(percentile(ms, 50), 1), "p95": round(percentile(ms, 95), 1),
            "max": round(max(ms), 1) if ms else None}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_mem_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


# ---------------------------------------------------------------- the measurements


def bench_index_builtin(work: Path, sizes: Sizes, out: dict) -> None:
    from interviewer.search.index import build_index, collect_chunks

    settings = Settings(data_dir=work / "fresh")
    chunks, _ = collect_chunks(settings)
    sample = chunks if sizes.builtin_sample is None else chunks[:sizes.builtin_sample]
    seconds, report = timed(lambda: build_index(settings, chunks=sample))
    per_chunk = seconds / max(1, len(sample))
    out.update(index_builtin_chunks=len(chunks), index_build_embedded=len(sample),
               index_build_measured_s=round(seconds, 2), index_ms_per_chunk=round(per_chunk * 1000, 1),
               index_build_s=round(seconds if len(sample) == len(chunks) else per_chunk * len(chunks), 2),
               index_build_projected=len(sample) != len(chunks))


def ready_data_dir(settings: Settings, work: Path, out: dict) -> Settings:
    """A data dir whose index holds the built-in notes: the configured one copied, else the fresh build."""
    from interviewer.search.index import build_index

    ready = Settings(data_dir=work / "ready")
    for src in (settings.index_dir, work / "fresh" / "index"):
        if src.is_dir() and not (ready.index_dir).exists():
            shutil.copytree(src, ready.index_dir)
    seconds, report = timed(lambda: build_index(ready))
    out.update(ready_index_s=round(seconds, 2), ready_index_embedded=report.added + report.updated)
    if report.added + report.updated:
        out.setdefault("notes", []).append(f"the working index needed {report.added + report.updated} chunks embedded "
                                           f"({seconds:.0f} s) before the other measurements")
    return ready


def bench_reindex(ready: Settings, out: dict) -> None:
    from interviewer.search.index import build_index

    report = build_index(ready)
    out.update(reindex_unchanged_s=round(report.seconds, 3), reindex_unchanged_chunks=report.unchanged,
               reindex_embedded=report.added + report.updated)


def queries(sizes: Sizes) -> list[str]:
    from devtools.evaluation import load_queries

    qs = [q["query"] for q in load_queries()]
    return qs if sizes.search_queries is None else qs[:sizes.search_queries]


def bench_search(retriever, qs: list[str]) -> dict:
    retriever.warm()  # jieba, BM25 and the embedder load on the first search
    times = []
    for q in qs:
        seconds, _ = timed(lambda q=q: retriever.search(q, k=5))
        times.append(seconds)
    return summary_ms(times)


def synthetic_chunks(n: int, seed: int = 7) -> list:
    """``n`` chunks recombined from the built-in notes' sentences, with the built-in chunks' lengths."""
    from interviewer.grading.answer_text import sentences
    from interviewer.search.index import Chunk, collect_chunks

    real, _ = collect_chunks(Settings(data_dir=Path(tempfile.gettempdir())))
    rng = random.Random(seed)
    pool = [s.raw for c in real for s in sentences(c.text) if len(s.raw) > 8]
    lengths = [len(c.text) for c in real]
    out = []
    for i in range(n):
        want, parts, size = rng.choice(lengths), [], 0
        while size < want:
            parts.append(rng.choice(pool))
            size += len(parts[-1])
        out.append(Chunk(id=hashlib.sha1(f"synthetic|{seed}|{i}".encode()).hexdigest()[:20],
                         source=f"synthetic_{i // 25:04d}.md", heading=f"合成笔记 {i // 25} › 小节 {i % 25}",
                         text="".join(parts)[:want + 200], topic="synthetic", origin="own", line=1))
    return out


def bench_synthetic(work: Path, sizes: Sizes, qs: list[str], out: dict) -> None:
    from interviewer.search.index import build_index
    from interviewer.search.retrieval import Retriever

    chunks = synthetic_chunks(sizes.synthetic_chunks)
    settings = Settings(data_dir=work / "synthetic")
    seconds, _ = timed(lambda: build_index(settings, chunks=chunks))
    retriever = Retriever(settings)
    refresh, _ = timed(retriever.refresh)
    search = bench_search(retriever, qs)
    out.update(synthetic_chunks=len(chunks), synthetic_build_s=round(seconds, 1),
               synthetic_ms_per_chunk=round(seconds / len(chunks) * 1000, 1), synthetic_bm25_load_s=round(refresh, 2),
               synthetic_search_p50_ms=search["p50"], synthetic_search_p95_ms=search["p95"])


def bench_grade(out: dict, sample: int | None = None) -> None:
    from devtools.evaluation import load_labelled
    from interviewer.grading.contract import Target
    from interviewer.grading.offline import grade_offline
    from interviewer.knowledge.bank import default_bank

    bank = default_bank()
    rows = load_labelled()
    if sample:
        rows = rows[::max(1, len(rows) // sample)][:sample]
    grade_offline(Target.of_question(bank[rows[0]["question_id"]]), rows[0]["answer"])  # warm caches
    times = []
    for r in rows:
        target = Target.of_question(bank[r["question_id"]])
        seconds, _ = timed(lambda t=target, a=r["answer"]: grade_offline(t, a))
        times.append(seconds)
    s = summary_ms(times)
    out.update(grade_n=s["n"], grade_p50_ms=s["p50"], grade_p95_ms=s["p95"])
