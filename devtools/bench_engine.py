"""The engine and app half of ``interviewer bench``: offline turns, prompt tokens per model call, model turns
against the stub server (prefetched wording vs sequential), paced concurrent sessions, throughput, and the app's
cold start to its first page. Each ``bench_*`` adds its figures to ``out``."""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devtools.bench_index import ANSWERS, ROOT, Sizes, free_port, summary_ms, timed
from interviewer.config import Settings


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


def bench_practice(work: Path, out: dict, points: int = 10_000, repeats: int = 5) -> None:
    """Today's review plan and the progress summary from a ledger of ``points`` graded key points."""
    from datetime import UTC, datetime, timedelta

    from interviewer.knowledge.bank import default_bank
    from interviewer.practice.ledger import Ledger
    from interviewer.practice.review import progress, review_plan

    bank = default_bank()
    qs = sorted((q for q in bank.values() if q.stage in ("technical", "drill")), key=lambda q: q.id)
    rng, ledger, t0 = random.Random(3), Ledger(work / "practice" / "ledger.sqlite"), datetime(2026, 11, 1, tzinfo=UTC)
    n = session = 0
    while n < points:
        turns = []
        for q in (rng.choice(qs) for _ in range(20)):
            turns.append({"stage": "technical", "kind": "main", "question_id": q.id, "target_id": q.id, "topic": q.topic,
                          "question": q.question.zh, "seconds": 60, "hints_used": 0,
                          "grade": {"band": rng.choice(["流畅", "基本", "卡顿", "不会"]), "score": rng.randint(0, 100), "flags": [],
                                    "points": [{"point_id": p.id, "point": p.point, "note": p.note, "covered": rng.choice([0, 0.5, 1])}
                                               for p in q.rubric]}})
            n += len(q.rubric)
        ledger.add_turns(f"bench-{session}", turns, at=t0 + timedelta(hours=session))
        session += 1
    now = t0 + timedelta(days=30)
    plan_s = [timed(lambda: review_plan(ledger, bank, 20, now))[0] for _ in range(repeats)]
    progress_s = [timed(lambda: progress(ledger, bank, now))[0] for _ in range(repeats)]
    out.update(practice_points=n, review_plan_p95_ms=summary_ms(plan_s)["p95"], progress_p95_ms=summary_ms(progress_s)["p95"])
    ledger.close()
