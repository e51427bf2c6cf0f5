"""``interviewer bench``: how fast and how big, with p50/p95, beside the targets in eval/targets.toml [bench].

Measures index builds (the built-in notes into a fresh dir; synthetic chunks for 10× scale), an
incremental re-index of unchanged notes, hybrid search (query embedding included), the offline grader
over the labelled answers, full offline turns (``Interviewer.send``), the app's cold start to its first
page, prompt tokens per model call at turns 1/10/40 beside a resend-the-whole-history baseline, 50 paced
sessions at once, throughput with no pause, and peak memory. Misses are reported, never fatal: the exit
code is 0 unless a measurement itself failed. ``--quick`` shrinks every size (and says so) for a CI smoke run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def bench_grade(out: dict) -> None:
    from devtools.evaluation import load_labelled
    from interviewer.grading.contract import Target
    from interviewer.grading.offline import grade_offline
    from interviewer.knowledge.bank import default_bank

    bank = default_bank()
    rows = load_labelled()
    grade_offline(Target.of_question(bank[rows[0]["question_id"]]), rows[0]["answer"])  # warm caches
    times = []
    for r in rows:
        target = Target.of_question(bank[r["question_id"]])
        seconds, _ = timed(lambda t=target, a=r["answer"]: grade_offline(t, a))
        times.append(seconds)
    s = summary_ms(times)
    out.update(grade_n=s["n"], grade_p50_ms=s["p50"], grade_p95_ms=s["p95"])


def answer_for(step: int, tag: str = "") -> str:
    return (f"{tag} " if tag else "") + ANSWERS[step % len(ANSWERS)]


def bench_turns(interviewer, sizes: Sizes, out: dict) -> None:
    times = []
    for n in range(sizes.turn_sessions):
        sid = interviewer.start().session_id
        for step in range(60):
            text = "/hint" if step == 3 else answer_for(step + n)
            seconds, reply = timed(lambda sid=sid, text=text: interviewer.send(sid, text, seconds=60))
            times.append(seconds)
            if reply.state.get("finished"):
                break
    s = summary_ms(times)
    out.update(turn_n=s["n"], turn_p50_ms=s["p50"], turn_p95_ms=s["p95"])


def long_plan(bank: dict):
    """A one-stage plan of many technical questions, long enough for 40 answered turns."""
    from interviewer.knowledge.bank import Plan

    ids = sorted(q.id for q in bank.values() if q.stage == "technical")[:24]
    return Plan.model_validate({"id": "bench_long", "title": {"zh": "基准：长面试", "en": "Bench: long interview"},
                                "follow_up_budget": 2, "stages": [{"id": "technical", "title": {"zh": "技术", "en": "Technical"},
                                                                   "budget_s": 10 ** 6, "questions": ids}]})


def stub_reply(grading: bool):
    """What the bench's stub model says: a valid, strict grade (every point missed) or a follow-up citing passage 1."""
    if grading:
        return {"points": [], "misconceptions": [], "feedback": "ok"}
    return "你刚才提到的这一点，能结合笔记再具体说说吗？[1]"


def stub_model():
    """An in-process chat model that records every call (replies from :func:`stub_reply`)."""
    from devtools.doubles.chat_model import StubChatModel

    return StubChatModel(responder=lambda call: stub_reply(bool(call.tools)))


def bench_tokens(ready: Settings, retriever, sizes: Sizes, out: dict) -> None:
    """Prompt tokens per model call at turns 1/10/40 (the engine sends each call only what it needs),
    beside a baseline that resends every earlier message of the conversation with each call."""
    from interviewer.engine.session import Interviewer
    from interviewer.engine.store import SessionStore
    from interviewer.tokens import count_message_tokens

    model = stub_model()
    store = SessionStore(ready.data_dir / "tokens.sqlite")
    interviewer = Interviewer(ready, retriever, model, store)
    plan = long_plan(interviewer.bank)
    interviewer.ctx.plans[plan.id] = plan
    sid = interviewer.start(plan_id=plan.id).session_id
    per_turn, baseline, latency = [], [], []
    for step in range(sizes.long_turns):
        history = interviewer.state(sid)["messages"]
        before = len(model.calls)
        text = answer_for(step)
        seconds, reply = timed(lambda text=text: interviewer.send(sid, text, seconds=60))
        calls = model.calls[before:]
        prompt = max((count_message_tokens(c.messages) for c in calls), default=0)
        earlier = count_message_tokens(history + [{"role": "user", "content": text}])
        per_turn.append(prompt)
        baseline.append(earlier + prompt)
        latency.append(seconds)
        if reply.state.get("finished"):
            break
    store.close()
    pick = lambda xs, n: xs[n - 1] if len(xs) >= n else None  # noqa: E731
    out.update(tokens_turn1=pick(per_turn, 1), tokens_turn10=pick(per_turn, 10), tokens_turn40=pick(per_turn, 40),
               baseline_tokens_turn1=pick(baseline, 1), baseline_tokens_turn10=pick(baseline, 10),
               baseline_tokens_turn40=pick(baseline, 40), tokens_turns_run=len(per_turn),
               long_turn_p50_ms_first4=round(statistics.median(latency[:4]) * 1000, 1),
               long_turn_p50_ms_last4=round(statistics.median(latency[-4:]) * 1000, 1))


MODEL_CALL_S = 0.3  # the stub server's latency per model call in the model-turn bench


def bench_model_turns(ready: Settings, retriever, sizes: Sizes, out: dict) -> None:
    """Turns with a model (the real ChatOpenAI against the stub server, MODEL_CALL_S per call), with the
    next follow-up worded while the answer is graded (prefetch) and without, on the same answers."""
    from devtools.doubles.openai_server import StubOpenAIServer
    from interviewer.engine.session import Interviewer
    from interviewer.engine.store import SessionStore
    from interviewer.models import build_chat_model

    def respond(body: dict):
        time.sleep(MODEL_CALL_S)
        return stub_reply(bool(body.get("tools")))

    with StubOpenAIServer(responder=respond, chunk_chars=6) as server:
        for prefetch in (True, False):
            settings = ready.with_(model="stub-model", base_url=server.base_url, api_key="bench", prefetch=prefetch)
            store = SessionStore(ready.data_dir / f"model-{prefetch}.sqlite")
            iv = Interviewer(settings, retriever, build_chat_model(settings), store)
            times, follow_ups = [], []
            for n in range(sizes.turn_sessions):
                sid = iv.start().session_id
                for step in range(sizes.model_turns):
                    text = answer_for(step + n)
                    seconds, reply = timed(lambda iv=iv, sid=sid, text=text: iv.send(sid, text, seconds=60))
                    if (reply.state.get("current") or {}).get("kind") == "follow_up":
                        follow_ups.append(seconds)
                    times.append(seconds)
                    if reply.state.get("finished"):
                        break
            store.close()
            tag = "prefetch" if prefetch else "sequential"
            out.update({f"model_turn_{tag}_p50_ms": summary_ms(times)["p50"],
                        f"model_follow_up_{tag}_p50_ms": summary_ms(follow_ups)["p50"] if follow_ups else None})
            if prefetch:
                out.update(model_turns=len(times), model_follow_up_turns=len(follow_ups), prefetch=iv.prefetch.as_dict())
    out["model_call_s"] = MODEL_CALL_S


def run_sessions(interviewer, sessions: int, turns: int, pause: float, seed: int = 1) -> tuple[list[float], float, int]:
    """``sessions`` threads, each answering ``turns`` times, one answer every ``pause`` seconds (0: none)."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    rng = random.Random(seed)
    offsets = [rng.uniform(0, pause) for _ in range(sessions)]

    def one(n: int) -> None:
        try:
            sid = interviewer.start().session_id
            begin = time.perf_counter() + offsets[n]
            for t in range(turns):
                wait = begin + t * pause - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                seconds, reply = timed(lambda t=t: interviewer.send(sid, answer_for(n + t, f"[{n}-{t}]"), seconds=60))
                with lock:
                    latencies.append(seconds)
                if reply.state.get("finished"):
                    break
        except Exception:
            with lock:
                errors.append(traceback.format_exc(limit=3))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        list(pool.map(one, range(sessions)))
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} sessions failed; first: {errors[0]}")
    return latencies, wall, len(latencies)


def bench_load(interviewer, sizes: Sizes, out: dict) -> None:
    latencies, wall, n = run_sessions(interviewer, sizes.load_sessions, sizes.load_turns, sizes.load_pause_s)
    s = summary_ms(latencies)
    out.update(load_sessions=sizes.load_sessions, load_turns=n, load_pause_s=sizes.load_pause_s,
               load50_p50_ms=s["p50"], load50_p95_ms=s["p95"], load_offered_turns_s=round(sizes.load_sessions / sizes.load_pause_s, 1))


def bench_throughput(interviewer, sizes: Sizes, out: dict) -> None:
    latencies, wall, n = run_sessions(interviewer, sizes.throughput_sessions, sizes.throughput_turns, 0.0, seed=2)
    s = summary_ms(latencies)
    out.update(throughput_turns_s=round(n / wall, 2), throughput_sessions=sizes.throughput_sessions, throughput_turns=n,
               throughput_turn_p95_ms=s["p95"])


def bench_cold_start(ready: Settings, work: Path, out: dict, timeout_s: float = 120) -> None:
    """Start ``python app.py --port N`` on a data dir that already has the index; time to HTTP 200 on /."""
    if not (ROOT / "interviewer" / "ui").is_dir() or not (ROOT / "app.py").is_file():
        out["cold_start_s"] = None
        out.setdefault("notes", []).append("app cold start skipped: interviewer/ui.py is missing")
        return
    data = work / "cold"
    shutil.copytree(ready.index_dir, data / "index")
    port = free_port()
    env = {**os.environ, "INTERVIEWER_DATA_DIR": str(data), "INTERVIEWER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "INTERVIEWER_HOST": "127.0.0.1"}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    log = (work / "app.log").open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while time.perf_counter() - started < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}: "
                                   + (work / "app.log").read_text(errors="replace")[-1500:])
            try:
                with opener.open(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    if resp.status == 200:
                        out["cold_start_s"] = round(time.perf_counter() - started, 2)
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"app.py gave no page within {timeout_s} s")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        log.close()


# ---------------------------------------------------------------- the report

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
        step("offline grade", lambda: bench_grade(figures))
        if ready is not None:
            interviewer = Interviewer(ready, retriever)
            step("offline turns", lambda: bench_turns(interviewer, sizes, figures))
            step("prompt tokens (turns 1/10/40)", lambda: bench_tokens(ready, retriever, sizes, figures))
            step("model turns (stub server)", lambda: bench_model_turns(ready, retriever, sizes, figures))
            step(f"load ({sizes.load_sessions} paced sessions)", lambda: bench_load(interviewer, sizes, figures))
            step("throughput", lambda: bench_throughput(interviewer, sizes, figures))
            step("app cold start", lambda: bench_cold_start(ready, work, figures))
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
