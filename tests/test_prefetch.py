"""With a model: the next follow-up is worded while the answer is graded, and its text streams.

The real ChatOpenAI talks to the stub server over HTTP (SSE for the streamed wording); the server
records when each request started and ended, so the tests check that the two calls overlapped.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from interviewer.engine.prefetch import TextStream, visible_text
from interviewer.engine.session import Interviewer
from interviewer.engine.store import SessionStore
from interviewer.models import build_chat_model

ANSWER = ("KV Cache 就是把之前 token 算出来的 K 和 V 存起来。因为生成是一个 token 一个 token 往后走的，前面 token 的 K、V 后面不会变，"
          "下一步只要算新 token 的 K、V，再跟缓存里的拼起来做 attention 就行，不用把整个句子重新算一遍，所以速度快很多。")
QUOTE = "KV Cache 就是把之前 token 算出来的 K 和 V 存起来"
WORDED = "你说缓存里的 K、V 可以直接复用，那每一步 decode 的计算量和整段生成的计算量分别是什么量级？[1]"
CALL_S = 1.0  # long enough that the two calls overlap even on a slow machine


class Recorder:
    """A stub-server responder: grades with ``covered`` (point ids), words follow-ups, and records call times."""

    def __init__(self, covered: set[str], call_s: float = CALL_S):
        self.covered, self.call_s, self.quote = covered, call_s, QUOTE
        self.calls: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict):
        start = time.monotonic()
        kind = "grade" if body.get("tools") else "word"
        time.sleep(self.call_s)
        if kind == "grade":
            prompt = " ".join(str(m.get("content")) for m in body["messages"])
            ids = re.findall(r"id=(\S+) weight", prompt)
            reply = {"points": [{"id": i, "verdict": "covered" if i in self.covered else "missing",
                                 "quote": self.quote if i in self.covered else ""} for i in ids], "feedback": "ok"}
        else:
            reply = WORDED
        with self._lock:
            self.calls.append((kind, start, time.monotonic()))
        return reply

    def span(self, kind: str) -> tuple[float, float]:
        return next((s, e) for k, s, e in self.calls if k == kind)


def interviewer_at_kv_cache(settings, retriever) -> tuple[Interviewer, str]:
    iv = Interviewer(settings, retriever, build_chat_model(settings), SessionStore(settings.db_path))
    sid = iv.start().session_id
    while iv.state(sid)["current"]["question_id"] != "kv_cache":
        iv.send(sid, "/skip")  # skipping asks no model
    return iv, sid


@pytest.fixture(scope="module")
def retriever(shared_retriever):
    shared_retriever.warm()  # as the app does at start: the embedder's first load is not part of a turn
    return shared_retriever


@pytest.fixture
def model_settings(llm_settings):
    return llm_settings.with_(turn_deadline_s=10, timeout_s=5)


def test_follow_up_is_worded_while_the_answer_is_graded_and_streams(model_settings, stub_server, retriever):
    rec = Recorder({"causal_kv_fixed", "only_new_token"})  # the model agrees with the offline grade: same probe
    stub_server.responder = rec
    stub_server.chunk_chars, stub_server.chunk_delay_s = 4, 0.05  # the wording arrives over ~1 s, after the grade
    iv, sid = interviewer_at_kv_cache(model_settings, retriever)
    seen: list[str] = []
    reply = iv.send(sid, ANSWER, seconds=60, on_text=seen.append)

    follow = [m for m in reply.messages if m.get("kind") == "follow_up"][0]
    assert follow["content"] == visible_text(WORDED)
    assert follow["citations"] and iv.prefetch.as_dict() == {"hit": 1, "miss": 0, "late": 0}
    grade_start, grade_end = rec.span("grade")
    word_start, word_end = rec.span("word")
    assert word_start < grade_end and grade_start < word_end, rec.calls  # the two model calls overlapped
    # the candidate saw the question grow piece by piece, never the [n] markers
    assert len(seen) >= 3 and seen[-1] == follow["content"]
    assert all(b.startswith(a) for a, b in zip(seen, seen[1:], strict=False))
    assert not any("[" in s for s in seen)
    assert reply.state["turns"][-1]["grade"]["grader"] == "llm+offline"


def test_a_wrong_guess_is_dropped_and_the_real_move_is_worded(model_settings, stub_server, retriever):
    from interviewer.knowledge.bank import default_bank

    full = default_bank()["kv_cache"].reference_answer.zh  # offline: 流畅, so the guess is a deeper follow-up
    rec = Recorder({"causal_kv_fixed"})
    rec.quote = full.split("。")[0]
    stub_server.responder = rec  # the model finds one point only: the real move probes a missed one
    iv, sid = interviewer_at_kv_cache(model_settings, retriever)
    seen: list[str] = []
    reply = iv.send(sid, full, seconds=60, on_text=seen.append)

    assert iv.prefetch.as_dict() == {"hit": 0, "miss": 1, "late": 0}
    current = reply.state["current"]
    assert current["reason"] == "missed"
    assert reply.state["turns"][-1]["grade"]["band"] != "流畅"
    assert [k for k, _s, _e in rec.calls].count("word") == 2  # the guess, then the real move
    assert seen and seen[-1] == current["text"]  # only the real move reached the candidate


def test_offline_turns_prepare_nothing(settings, retriever):
    iv, sid = interviewer_at_kv_cache(settings, retriever)  # offline settings: no model is built
    assert iv.model is None
    seen: list[str] = []
    reply = iv.send(sid, ANSWER, seconds=60, on_text=seen.append)
    assert reply.state["current"]["kind"] == "follow_up" and not seen
    assert iv.prefetch.as_dict() == {"hit": 0, "miss": 0, "late": 0}


def test_text_stream_replays_to_a_late_listener_and_survives_a_broken_one():
    stream = TextStream()
    stream.push("每一步要读")
    stream.push("多少显存？[")
    got: list[str] = []
    stream.attach(got.append)
    stream.push("1]")
    assert got == ["每一步要读多少显存？", "每一步要读多少显存？"]

    def broken(_text: str) -> None:
        raise RuntimeError("page closed")

    stream.attach(broken)
    stream.push(" 再说说带宽。")  # a listener that raises does not break the producer
    assert stream.text == "每一步要读多少显存？ 再说说带宽。"


def test_reverse_stage_agent_searches_the_notes_cites_them_and_streams(model_settings, stub_server, retriever):
    """The candidate's own question goes to the create_agent agent: it calls the notes tool, answers citing
    what the tool returned, and the answer streams (the tool-call turn is never shown)."""
    from devtools.doubles.chat_model import tool_call

    def respond(body: dict):
        tool_results = [m["content"] for m in body["messages"] if m.get("role") == "tool"]
        if not tool_results:
            return tool_call("search_notes", {"query": "PagedAttention block table 映射"})
        address = re.search(r"\[([^\]\n]+ § [^\]\n]+)\]", tool_results[0]).group(1)
        return f"根据笔记 [{address}]：block table 把逻辑块号映射到物理块号，物理块不必连续。"

    stub_server.responder = respond
    stub_server.chunk_chars, stub_server.chunk_delay_s = 4, 0.02
    iv = Interviewer(model_settings, retriever, build_chat_model(model_settings), SessionStore(model_settings.db_path))
    sid = iv.start().session_id
    while iv.state(sid)["current"]["question_id"] != "reverse_questions":
        iv.send(sid, "/skip")
    seen: list[str] = []
    reply = iv.send(sid, "PagedAttention 的 block table 具体是怎么映射的？", seconds=30, on_text=seen.append)
    answer = [m for m in reply.messages if m.get("kind") == "reverse_answer"][0]
    assert "block table 把逻辑块号映射到物理块号" in answer["content"]
    assert answer["citations"] and all(f"{c['source']} § {c['heading']}" in retriever.addresses() for c in answer["citations"])
    assert len(seen) >= 2 and seen[-1] == answer["content"]
    assert any(s in answer["content"] and s != answer["content"] for s in seen), "the answer arrived in pieces"
    assert any(m.get("role") == "tool" for m in stub_server.requests[-1]["messages"]), "the agent used the notes tool"
