"""Model faults through the engine: the real ChatOpenAI talks to the stub server, which fails in every
way it can. Each turn still ends within ``turn_deadline_s`` with a graded answer (the offline grader,
said out loud), the answer is persisted, and the next question arrives."""

from __future__ import annotations

import time

import pytest

from devtools.doubles import openai_server as stubs
from devtools.doubles.openai_server import StubOpenAIServer
from interviewer.config import Settings
from interviewer.engine.session import Interviewer
from interviewer.engine.store import SessionStore
from interviewer.models import build_chat_model

DEADLINE_S = 3.0
ANSWERS = [
    "我是计算机专业的研究生，方向是分布式系统。部署模型时发现 decode 阶段 GPU 大量闲置，所以对推理优化感兴趣。",
    "为了准备面试，我跑了 vLLM 的实践，读了 KsanaLLM 的调度源码，也希望加入腾讯混元做推理优化。",
]
# fault name → how to switch it on (all persistent: every model request of the interview fails)
FAULTS = {
    "timeout": lambda srv: srv.set_fault("slow", times=None, seconds=10),
    "connection_refused": lambda srv: srv.set_fault("refused"),
    "http_429_retry_after": lambda srv: srv.set_fault("http_429", times=None),
    "http_500": lambda srv: srv.set_fault("http_500", times=None),
    "malformed_json": lambda srv: srv.set_fault("malformed_json", times=None),
    "invalid_structured": lambda srv: srv.set_fault("invalid_structured", times=None),
    "cut_stream": lambda srv: srv.set_fault("cut_stream", times=None),
    "empty_reply": lambda srv: srv.set_fault("empty", times=None),
}
WALL_TIMES: dict[str, list[float]] = {}


@pytest.fixture
def fault_settings(llm_settings: Settings) -> Settings:
    return llm_settings.with_(turn_deadline_s=DEADLINE_S)


@pytest.fixture(scope="module")
def retriever(shared_retriever):
    """The shared retriever, warmed up (jieba and BM25 load on the first search, as at app start)."""
    shared_retriever.search("KV cache 预热")
    return shared_retriever


def long_retry_after(monkeypatch, seconds: int = 8) -> None:
    """Make the stub's 429 say ``Retry-After: <seconds>`` (the client would sleep that long)."""
    original = stubs._Handler._error

    def patched(self, status, message, kind, headers=None):
        if status == 429:
            headers = {"Retry-After": str(seconds)}
        return original(self, status, message, kind, headers)

    monkeypatch.setattr(stubs._Handler, "_error", patched)


def answer_turn(interviewer: Interviewer, sid: str, text: str):
    started = time.perf_counter()
    reply = interviewer.send(sid, text, seconds=40)
    return reply, time.perf_counter() - started


def assert_fallback_turn(reply, text: str, wall: float) -> None:
    assert wall <= DEADLINE_S, f"the candidate waited {wall:.2f} s (deadline {DEADLINE_S} s)"
    state = reply.state
    turn = state["turns"][-1]
    assert turn["answer"] == text
    grade = turn["grade"]
    assert "fallback" in grade["grader"], grade["grader"]
    assert grade["notice"], "the fallback must be explained to the candidate"
    shown = "\n".join(m["content"] for m in reply.messages)
    assert grade["notice"] in shown
    assert grade["band"] in ("流畅", "基本", "卡顿", "不会") and 0 <= grade["score"] <= 100
    asked = [m for m in reply.messages if m.get("kind") in ("main", "follow_up")]
    assert asked and asked[-1]["content"].strip(), "the next question must arrive"
    assert not state.get("finished") and state["current"]["text"] in asked[-1]["content"]


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS) + ["http_429_long_retry_after"])
def test_turn_survives_model_fault(fault: str, fault_settings: Settings, stub_server: StubOpenAIServer,
                                   retriever, monkeypatch):
    model = build_chat_model(fault_settings)
    interviewer = Interviewer(fault_settings, retriever, model)
    start = interviewer.start()
    sid = start.session_id
    if fault == "http_429_long_retry_after":
        long_retry_after(monkeypatch)
        stub_server.set_fault("http_429", times=None)
    else:
        FAULTS[fault](stub_server)

    walls = []
    for text in ANSWERS:
        reply, wall = answer_turn(interviewer, sid, text)
        walls.append(round(wall, 2))
        assert_fallback_turn(reply, text, wall)
    WALL_TIMES[fault] = walls
    print(f"\nfault {fault}: turn wall times {walls} s (deadline {DEADLINE_S} s)")

    # bounded retries: each model call makes at most 1 + max_retries requests, and a turn makes three calls at
    # most (the grade, the follow-up worded on the offline grade's guess, and the real one when the guess was wrong)
    assert len(stub_server.requests) <= 3 * (1 + fault_settings.max_retries) * len(ANSWERS)

    # persisted: a fresh interviewer on the same database sees both answers and the open question
    fresh = Interviewer(fault_settings, retriever, None, SessionStore(fault_settings.db_path))
    state = fresh.state(sid)
    assert [t["answer"] for t in state["turns"]] == ANSWERS
    assert [m["content"] for m in state["messages"] if m["role"] == "user"] == ANSWERS
    assert state["current"] and not state["finished"]
    assert fresh.store.integrity_ok()


@pytest.mark.parametrize("fault", ["http_500", "http_429", "cut_stream", "malformed_json"])
def test_transient_fault_is_retried_and_the_model_grades(fault: str, fault_settings: Settings,
                                                          stub_server: StubOpenAIServer):
    """One failed request, then a good reply: the bounded retry recovers and the LLM grade is used."""
    stub_server.default_reply = {"points": [], "misconceptions": [], "feedback": "ok"}
    # only the grading call: with prefetch the follow-up's wording may reach the server first and take the fault
    settings = fault_settings.with_(prefetch=False)
    interviewer = Interviewer(settings, None, build_chat_model(settings))
    sid = interviewer.start().session_id
    stub_server.set_fault(fault, times=1)
    reply, wall = answer_turn(interviewer, sid, ANSWERS[0])
    grade = reply.state["turns"][-1]["grade"]
    if fault == "malformed_json":  # a 200 with a broken body is not retried by the client: fallback
        assert "fallback" in grade["grader"]
    else:
        assert grade["grader"] == "llm+offline", grade
        assert not grade["notice"]
    assert wall <= DEADLINE_S
