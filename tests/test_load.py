"""Load: 50 concurrent scripted sessions × 20 turns against ONE Interviewer (threads), offline, with the
notes retriever. Zero errors, and no session ever sees another's answers."""

from __future__ import annotations

import re
import statistics
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest

from interviewer.config import Settings
from interviewer.engine.session import Interviewer
from interviewer.engine.store import SessionStore
from interviewer.report.exporters.json_file import to_json
from interviewer.report.transcript import build_transcript

SESSIONS = 50
TURNS = 20
TAG = re.compile(r"⟦S(\d\d)-T(\d\d)⟧")
TEMPLATES = [
    "⟦{tag}⟧ KV cache 把历史 token 的 K 和 V 存下来，decode 时只为新 token 算 Q、K、V，显存随长度线性增长。",
    "⟦{tag}⟧ 不太清楚，可能和显存有关。",
    "⟦{tag}⟧ PagedAttention 把 KV 切成固定大小的 block，用 block table 把逻辑块映射到物理块，按需分配，减少碎片。",
    "⟦{tag}⟧ continuous batching 每轮迭代后重新组 batch，完成的请求立刻退出，新请求马上补进来。",
    "⟦{tag}⟧ FlashAttention 分块计算，用 online softmax，不把 N×N 的矩阵写回 HBM，所以快。",
]


def failed(errors: list[str], lock: threading.Lock) -> None:
    """Record the running exception of a session thread (the test fails on it after all threads end)."""
    with lock:
        errors.append(traceback.format_exc())


def assert_only_own_answers(state: dict, n: int) -> None:
    """Session ``n``'s exported transcript holds no other session's tagged answers."""
    owners = {m.group(1) for m in TAG.finditer(to_json(build_transcript(state)))}
    assert owners == {f"{n:02d}"}, f"session {n} transcript holds answers of sessions {owners}"


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fifty_concurrent_sessions_without_errors_or_leakage(settings: Settings, shared_retriever):
    shared_retriever.search("预热")
    interviewer = Interviewer(settings, shared_retriever)
    barrier = threading.Barrier(SESSIONS, timeout=120)
    latencies: list[float] = []
    errors: list[str] = []
    sent: dict[int, list[str]] = {}
    lock = threading.Lock()

    def session(n: int) -> str | None:
        try:
            sid = interviewer.start().session_id
            barrier.wait()  # every session starts answering at once
            mine = []
            for t in range(TURNS):
                text = TEMPLATES[(n + t) % len(TEMPLATES)].format(tag=f"S{n:02d}-T{t:02d}")
                started = time.perf_counter()
                reply = interviewer.send(sid, text, seconds=30)
                took = time.perf_counter() - started
                mine.append(text)
                with lock:
                    latencies.append(took)
                assert reply.session_id == sid and reply.messages[0]["content"] == text
                assert not reply.state["finished"], "the plan outlasts 20 answers"
            sent[n] = mine
            return sid
        except Exception:
            return failed(errors, lock)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        sids = list(pool.map(session, range(SESSIONS)))
    wall = time.perf_counter() - started
    assert not errors, errors[0]
    assert len(set(sids)) == SESSIONS

    fresh = Interviewer(settings, None, None, SessionStore(settings.db_path))
    assert fresh.store.integrity_ok()
    for n, sid in enumerate(sids):
        state = fresh.state(sid)
        users = [m["content"] for m in state["messages"] if m["role"] == "user"]
        assert users == sent[n], f"session {n}: its messages are exactly its own answers, in order"
        assert [t["answer"] for t in state["turns"]] == sent[n]
        assert_only_own_answers(state, n)
    assert len(fresh.store.list(limit=1000)) == SESSIONS

    turns = SESSIONS * TURNS
    print(f"\nload: {SESSIONS} sessions × {TURNS} turns in {wall:.1f} s → {turns / wall:.1f} turns/s; "
          f"turn latency p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")


HTTP_SESSIONS = 10


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ten_sessions_through_the_http_app(built_index, tmp_path):
    """10 browsers' worth of sessions at once through the app's HTTP API (gradio_client), 20 answers each."""
    import shutil

    from gradio_client import Client

    from interviewer.facade import InterviewApp
    from interviewer.services import build_services
    from interviewer.ui.layout import launch
    from tests.test_ui_api import SID, free_port

    shutil.copytree(built_index / "index", tmp_path / "data" / "index")
    services = build_services(Settings(data_dir=tmp_path / "data", port=free_port()))
    services.retriever.warm()
    demo = launch(InterviewApp(services), prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{services.settings.port}/"
    latencies: list[float] = []
    errors: list[str] = []
    sent: dict[int, list[str]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(HTTP_SESSIONS, timeout=120)

    def session(n: int) -> str | None:
        try:
            client = Client(url, verbose=False)
            sid = client.predict("", api_name="/new_session")[SID]
            barrier.wait()
            mine = []
            for t in range(TURNS):
                text = TEMPLATES[(n + t) % len(TEMPLATES)].format(tag=f"S{n:02d}-T{t:02d}")
                started = time.perf_counter()
                out = client.predict(sid, text, api_name="/send")
                with lock:
                    latencies.append(time.perf_counter() - started)
                assert out[SID] == sid and out[-1] == "", "the turn was saved and the box cleared"
                mine.append(text)
            sent[n] = mine
            return sid
        except Exception:
            return failed(errors, lock)

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=HTTP_SESSIONS) as pool:
            sids = list(pool.map(session, range(HTTP_SESSIONS)))
        wall = time.perf_counter() - started
    finally:
        demo.close()
    assert not errors, errors[0]
    assert len(set(sids)) == HTTP_SESSIONS
    for n, sid in enumerate(sids):
        state = services.interviewer.state(sid)
        assert [t["answer"] for t in state["turns"]] == sent[n]
        assert_only_own_answers(state, n)
    assert services.interviewer.store.integrity_ok()
    print(f"\nHTTP load: {HTTP_SESSIONS} sessions × {TURNS} turns in {wall:.1f} s → {HTTP_SESSIONS * TURNS / wall:.1f} turns/s; "
          f"turn p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95(latencies) * 1000:.0f} ms")
