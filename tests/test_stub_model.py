"""The test doubles themselves: StubChatModel (LangChain standard unit tests + scripting) and the
StubOpenAIServer wire format, control endpoints and command-line entry."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_tests.unit_tests import ChatModelUnitTests
from pydantic import BaseModel, Field

from devtools.doubles.chat_model import DEFAULT_REPLY, FAULTS, StubCall, StubChatModel, approx_tokens, tool_call
from devtools.doubles.openai_server import StubOpenAIServer, closed_port

ROOT = Path(__file__).resolve().parents[1]


class Grade(BaseModel):
    """A grade for one answer."""

    score: int = Field(description="0-5")
    reason: str


@tool
def lookup_note(topic: str) -> str:
    """Look up the candidate's note on a topic."""
    return f"note about {topic}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


# ------------------------------------------------------------------ LangChain standard unit tests


class TestStubChatModelStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[StubChatModel]:
        return StubChatModel

    @property
    def chat_model_params(self) -> dict:
        return {"model": "stub-model"}

    @property
    def model_override_value(self) -> str:
        return "stub-model-large"


try:
    import syrupy  # noqa: F401  (provides the ``snapshot`` fixture)
except ImportError:

    @pytest.fixture
    def snapshot():
        """Stands in for syrupy's fixture when it is not installed. Only the standard
        ``test_serdes`` asks for it, and it skips itself: StubChatModel is not serializable."""
        return None


# ------------------------------------------------------------------ StubChatModel scripting


def test_queue_order_then_default(stub_model: StubChatModel):
    stub_model.enqueue("first", AIMessage(content="second"), {"k": "v"})
    assert stub_model.pending == 3
    assert stub_model.invoke("a").content == "first"
    assert stub_model.invoke("b").content == "second"
    assert json.loads(stub_model.invoke("c").content) == {"k": "v"}  # no tools bound → JSON text
    assert stub_model.invoke("d").content == DEFAULT_REPLY
    assert stub_model.pending == 0


def test_queued_exception_is_raised(stub_model: StubChatModel):
    stub_model.enqueue(TimeoutError("model too slow"), "after")
    with pytest.raises(TimeoutError, match="too slow"):
        stub_model.invoke("x")
    assert stub_model.invoke("x").content == "after"
    stub_model.enqueue(ConnectionError)  # a class works too
    with pytest.raises(ConnectionError):
        stub_model.invoke("x")


def test_responder_sees_the_call():
    def responder(call: StubCall):
        return f"{len(call)} messages, last: {call[-1].content}"

    model = StubChatModel(responder=responder)
    reply = model.invoke([SystemMessage("sys"), HumanMessage("什么是 KV cache？")])
    assert reply.content == "2 messages, last: 什么是 KV cache？"


def test_calls_record_messages_tools_and_kwargs(stub_model: StubChatModel):
    stub_model.invoke([SystemMessage("你是面试官"), HumanMessage("hello")], stop=["END"])
    call = stub_model.last_call
    assert isinstance(call, list) and [m.type for m in call] == ["system", "human"]
    assert "你是面试官" in call.text
    assert call.tools == [] and call.kwargs["stop"] == ["END"]
    stub_model.bind_tools([lookup_note, add], tool_choice="any").invoke("x")
    assert stub_model.calls[-1].tool_names == ["lookup_note", "add"]
    assert stub_model.calls[-1].tool_choice == "any"
    assert len(stub_model.calls) == 2
    stub_model.reset()
    assert stub_model.calls == [] and stub_model.pending == 0


def test_usage_metadata_and_stop(stub_model: StubChatModel):
    stub_model.enqueue("answer one END ignored")
    msg = stub_model.invoke("count these words", stop=["END"])
    assert msg.content == "answer one "
    usage = msg.usage_metadata
    assert usage["input_tokens"] > 0 and usage["output_tokens"] == approx_tokens("answer one ")
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert msg.response_metadata["model_name"] == "stub-model"


def test_dict_reply_picks_the_tool_whose_parameters_fit(stub_model: StubChatModel):
    bound = stub_model.bind_tools([lookup_note, add])
    stub_model.enqueue({"a": 1, "b": 2}, {"topic": "kv"}, {"name": "add", "args": {"a": 5, "b": 6}})
    assert bound.invoke("x").tool_calls[0]["name"] == "add"
    second = bound.invoke("x").tool_calls[0]
    assert second["name"] == "lookup_note" and second["args"] == {"topic": "kv"} and second["id"]
    assert bound.invoke("x").tool_calls[0]["args"] == {"a": 5, "b": 6}
    stub_model.enqueue(tool_call("add", {"a": 1, "b": 1}))  # explicit, any tool
    assert bound.invoke("x").tool_calls[0]["name"] == "add"


@pytest.mark.parametrize("method", [None, "function_calling", "json_schema"])
def test_with_structured_output(stub_model: StubChatModel, method):
    kwargs = {"method": method} if method else {}
    stub_model.enqueue({"score": 4, "reason": "清楚"}, Grade(score=2, reason="ok"))
    structured = stub_model.with_structured_output(Grade, **kwargs)
    assert structured.invoke("grade this") == Grade(score=4, reason="清楚")
    assert structured.invoke("grade this") == Grade(score=2, reason="ok")
    assert stub_model.last_call.tool_names == ["Grade"]


def test_with_structured_output_include_raw(stub_model: StubChatModel):
    stub_model.enqueue({"score": 1, "reason": "r"})
    out = stub_model.with_structured_output(Grade, include_raw=True).invoke("x")
    assert out["parsed"] == Grade(score=1, reason="r") and out["raw"].tool_calls


def test_create_agent_with_tool_strategy(stub_model: StubChatModel):
    from langchain.agents import create_agent
    from langchain.agents.structured_output import ToolStrategy

    agent = create_agent(stub_model, [lookup_note], response_format=ToolStrategy(Grade))
    stub_model.enqueue({"topic": "paged attention"}, {"score": 5, "reason": "cites the note"})
    result = agent.invoke({"messages": [HumanMessage("grade my answer")]})
    assert result["structured_response"] == Grade(score=5, reason="cites the note")
    first, second = stub_model.calls
    assert set(first.tool_names) == {"lookup_note", "Grade"}
    tool_messages = [m for m in second if isinstance(m, ToolMessage)]
    assert tool_messages and tool_messages[0].content == "note about paged attention"


def test_stream_text_chunks_and_usage():
    model = StubChatModel(chunk_chars=4)
    text = "PagedAttention 把 KV cache 分页管理"
    model.enqueue(text)
    chunks = list(model.stream("x"))
    assert len(chunks) > 3
    full = chunks[0]
    for c in chunks[1:]:
        full += c
    assert full.content == text
    assert full.usage_metadata["output_tokens"] == approx_tokens(text)
    assert full.response_metadata["finish_reason"] == "stop"


def test_stream_tool_call_aggregates(stub_model: StubChatModel):
    stub_model.enqueue({"a": 2, "b": 3})
    chunks = list(stub_model.bind_tools([add]).stream("x"))
    full = chunks[0]
    for c in chunks[1:]:
        full += c
    assert full.tool_calls[0]["name"] == "add" and full.tool_calls[0]["args"] == {"a": 2, "b": 3}


def test_async_invoke_and_stream(stub_model: StubChatModel):
    stub_model.enqueue("one", "two three four five")

    async def run():
        first = await stub_model.ainvoke("x")
        parts = [c.content async for c in stub_model.astream("y")]
        return first, parts

    first, parts = asyncio.run(run())
    assert first.content == "one" and "".join(parts) == "two three four five"


def test_queue_is_thread_safe(stub_model: StubChatModel):
    n_threads, per_thread = 8, 40
    stub_model.enqueue(*[str(i) for i in range(n_threads * per_thread)])
    seen: list[str] = []
    lock = threading.Lock()

    def worker():
        for _ in range(per_thread):
            content = stub_model.invoke("x").content
            with lock:
                seen.append(content)

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen, key=int) == [str(i) for i in range(n_threads * per_thread)]
    assert len(stub_model.calls) == n_threads * per_thread


# ------------------------------------------------------------------ StubOpenAIServer wire format


def _post(url: str, body: dict) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _sse_events(raw: bytes) -> list[str]:
    return [line[len("data: ") :] for line in raw.decode().split("\n") if line.startswith("data: ")]


def test_server_models_and_json_completion(stub_server: StubOpenAIServer):
    with urllib.request.urlopen(stub_server.base_url + "/models", timeout=5) as resp:
        assert json.load(resp)["data"][0]["id"] == "stub-model"
    stub_server.enqueue("你好")
    status, _, raw = _post(stub_server.base_url + "/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    payload = json.loads(raw)
    assert status == 200 and payload["choices"][0]["message"]["content"] == "你好"
    assert payload["usage"]["total_tokens"] == payload["usage"]["prompt_tokens"] + payload["usage"]["completion_tokens"]
    assert stub_server.requests[-1]["messages"][0]["content"] == "hi"
    assert stub_server.prompt_text() == "hi"


@pytest.mark.parametrize("include_usage", [True, False])
def test_server_sse_stream(stub_server: StubOpenAIServer, include_usage: bool):
    stub_server.enqueue("a fairly long streamed reply")
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    status, headers, raw = _post(stub_server.base_url + "/chat/completions", body)
    events = _sse_events(raw)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "a fairly long streamed reply"
    assert any(c.get("usage") for c in chunks) is include_usage


def test_server_tool_call_and_json_schema(stub_server: StubOpenAIServer):
    tools = [{"type": "function", "function": {"name": "grade", "parameters": {"type": "object", "properties": {"score": {"type": "integer"}}}}}]
    stub_server.enqueue({"score": 3}, {"score": 4})
    _, _, raw = _post(stub_server.base_url + "/chat/completions", {"messages": [], "tools": tools})
    message = json.loads(raw)["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "grade", "arguments": '{"score": 3}'}
    assert json.loads(raw)["choices"][0]["finish_reason"] == "tool_calls"
    fmt = {"type": "json_schema", "json_schema": {"name": "G", "schema": {"type": "object"}}}
    _, _, raw = _post(stub_server.base_url + "/chat/completions", {"messages": [], "response_format": fmt})
    assert json.loads(json.loads(raw)["choices"][0]["message"]["content"]) == {"score": 4}


def test_server_fault_counts_and_persistence(stub_server: StubOpenAIServer):
    url = stub_server.base_url + "/chat/completions"
    stub_server.set_fault("http_500", times=2)
    assert [_post(url, {"messages": []})[0] for _ in range(3)] == [500, 500, 200]
    stub_server.set_fault("http_429", times=None)
    status, headers, _ = _post(url, {"messages": []})
    assert status == 429 and headers["Retry-After"] == "0"
    assert _post(url, {"messages": []})[0] == 429
    stub_server.clear_faults()
    assert _post(url, {"messages": []})[0] == 200
    with pytest.raises(ValueError, match="unknown fault"):
        stub_server.set_fault("teapot")
    assert "refused" in FAULTS


def test_server_cut_stream_has_no_done(stub_server: StubOpenAIServer):
    stub_server.enqueue("x" * 200)
    stub_server.set_fault("cut_stream")
    conn = http.client.HTTPConnection("127.0.0.1", stub_server.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", json.dumps({"stream": True, "messages": []}), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert b"[DONE]" not in info.value.partial and b"data: " in info.value.partial
    conn.close()


def test_server_refused_and_closed_port(stub_server: StubOpenAIServer):
    port = stub_server.port
    stub_server.set_fault("refused")
    assert not stub_server.listening
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", closed_port(), timeout=2).connect()
    stub_server.close()
    stub_server.close()  # idempotent


def test_server_control_endpoints(stub_server: StubOpenAIServer):
    base = stub_server.url
    _post(base + "/_stub/enqueue", {"replies": ["queued over http"]})
    _, _, raw = _post(stub_server.base_url + "/chat/completions", {"messages": [{"role": "user", "content": "q"}]})
    assert json.loads(raw)["choices"][0]["message"]["content"] == "queued over http"
    with urllib.request.urlopen(base + "/_stub/requests", timeout=5) as resp:
        assert json.load(resp)[-1]["messages"][0]["content"] == "q"
    _post(base + "/_stub/fault", {"name": "http_500", "times": 1})
    assert _post(stub_server.base_url + "/chat/completions", {"messages": []})[0] == 500
    _post(base + "/_stub/reset", {})
    assert stub_server.requests == []


def test_command_line_entry_serves_until_killed():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "devtools.doubles.openai_server", "--port", "0", "--reply", "from the cli"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            base_url = proc.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            _, _, raw = _post(base_url + "/chat/completions", {"messages": []})
            assert json.loads(raw)["choices"][0]["message"]["content"] == "from the cli"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert proc.returncode == 0
