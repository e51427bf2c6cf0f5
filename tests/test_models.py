"""The model factory through the REAL ChatOpenAI over a socket to the stub server (happy paths and
every fault), the test network guard, offline token counting, and Settings."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import time
from pathlib import Path

import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, ValidationError
from pytest_socket import SocketConnectBlockedError

from devtools.doubles.chat_model import tool_call
from devtools.doubles.openai_server import StubOpenAIServer, unused_base_url
from interviewer import models, tokens
from interviewer.config import Settings, default_data_dir, read_dotenv
from interviewer.models import ModelRequestsBlocked, build_chat_model, describe_model_error

SECRET = "sk-test-SECRET-123"


class Person(BaseModel):
    """A person mentioned in the answer."""

    name: str
    age: int


@tool
def lookup_note(topic: str) -> str:
    """Look up the candidate's note on a topic."""
    return f"note about {topic}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _collect(stream):
    chunks = list(stream)
    full = chunks[0]
    for c in chunks[1:]:
        full += c
    return chunks, full


def _assert_plain_words(exc: BaseException, *expected: str) -> str:
    words = describe_model_error(exc)
    assert words and "\n" not in words and "Traceback" not in words
    assert SECRET not in words and SECRET not in str(exc)
    for part in expected:
        assert part in words, words
    return words


# ------------------------------------------------------------------ happy paths


def test_plain_completion(llm_settings: Settings, stub_server: StubOpenAIServer):
    from langchain_openai import ChatOpenAI

    stub_server.enqueue("你好，我们从 KV cache 开始。")
    llm = build_chat_model(llm_settings)
    assert isinstance(llm, ChatOpenAI)
    reply = llm.invoke([SystemMessage("你是推理加速方向的面试官"), HumanMessage("请开始面试")])
    assert reply.content == "你好，我们从 KV cache 开始。"
    assert reply.usage_metadata["total_tokens"] > 0
    body = stub_server.last_request
    assert body["model"] == "stub-model" and not body.get("stream")
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "推理加速方向的面试官" in stub_server.prompt_text()
    assert stub_server.request_headers[-1]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in json.dumps(body, ensure_ascii=False)


def test_streamed_completion_with_usage(llm_settings: Settings, stub_server: StubOpenAIServer):
    text = "Continuous batching 在每个解码步把新请求插入批次，GPU 不必等整批结束。"
    stub_server.enqueue(text)
    llm = build_chat_model(llm_settings, streaming=True)
    chunks, full = _collect(llm.stream("解释 continuous batching"))
    assert len([c for c in chunks if c.content]) > 3
    assert full.content == text
    assert full.usage_metadata["output_tokens"] > 0 and full.usage_metadata["input_tokens"] > 0
    body = stub_server.last_request
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_async_stream(llm_settings: Settings, stub_server: StubOpenAIServer):
    stub_server.enqueue("async streamed answer")
    llm = build_chat_model(llm_settings, streaming=True)

    async def run():
        return [c.content async for c in llm.astream("q")]

    assert "".join(asyncio.run(run())) == "async streamed answer"


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output(llm_settings: Settings, stub_server: StubOpenAIServer, method: str):
    stub_server.enqueue({"name": "Ann", "age": 30})
    structured = build_chat_model(llm_settings).with_structured_output(Person, method=method)
    assert structured.invoke("who?") == Person(name="Ann", age=30)
    body = stub_server.last_request
    if method == "json_schema":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "Person"
    else:
        assert body["tools"][0]["function"]["name"] == "Person"
        assert "response_format" not in body


def test_tool_call_round_trip(llm_settings: Settings, stub_server: StubOpenAIServer):
    llm = build_chat_model(llm_settings).bind_tools([lookup_note, add])
    stub_server.enqueue({"topic": "paged_attention"}, tool_call("add", {"a": 1, "b": 2}), "done")
    first = llm.invoke("look it up")
    assert first.tool_calls[0]["name"] == "lookup_note"
    assert first.tool_calls[0]["args"] == {"topic": "paged_attention"}
    assert [t["function"]["name"] for t in stub_server.last_request["tools"]] == ["lookup_note", "add"]
    second = llm.invoke("add")
    assert second.tool_calls[0]["name"] == "add" and second.tool_calls[0]["args"] == {"a": 1, "b": 2}
    result = lookup_note.invoke(first.tool_calls[0]["args"])
    final = llm.invoke([HumanMessage("look it up"), first, ToolMessage(result, tool_call_id=first.tool_calls[0]["id"])])
    assert final.content == "done"
    sent = stub_server.last_request["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "note about paged_attention"


def test_agent_with_tool_strategy_over_the_wire(llm_settings: Settings, stub_server: StubOpenAIServer):
    from langchain.agents import create_agent
    from langchain.agents.structured_output import ToolStrategy

    agent = create_agent(build_chat_model(llm_settings), [lookup_note], response_format=ToolStrategy(Person))
    stub_server.enqueue({"topic": "kv_cache"}, {"name": "Ann", "age": 30})
    result = agent.invoke({"messages": [HumanMessage("who wrote the note?")]})
    assert result["structured_response"] == Person(name="Ann", age=30)
    assert {t["function"]["name"] for t in stub_server.requests[0]["tools"]} == {"lookup_note", "Person"}
    assert stub_server.requests[1]["messages"][-1] == {
        "role": "tool",
        "content": "note about kv_cache",
        "tool_call_id": stub_server.requests[1]["messages"][-2]["tool_calls"][0]["id"],
    }


def test_retry_recovers_after_one_500(llm_settings: Settings, stub_server: StubOpenAIServer):
    stub_server.set_fault("http_500", times=1)
    stub_server.enqueue("second try")
    assert build_chat_model(llm_settings).invoke("x").content == "second try"
    assert len(stub_server.requests) == 2


# ------------------------------------------------------------------ faults: clear error, bounded time


def test_http_500(llm_settings: Settings, stub_server: StubOpenAIServer):
    stub_server.set_fault("http_500", times=None)
    start = time.monotonic()
    with pytest.raises(openai.InternalServerError) as info:
        build_chat_model(llm_settings).invoke("x")
    assert time.monotonic() - start < 5
    assert len(stub_server.requests) == 2  # max_retries=1
    _assert_plain_words(info.value, "5xx")


def test_http_429_with_retry_after(llm_settings: Settings, stub_server: StubOpenAIServer):
    stub_server.set_fault("http_429", times=None)
    start = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        build_chat_model(llm_settings).invoke("x")
    assert time.monotonic() - start < 5
    assert len(stub_server.requests) == 2
    _assert_plain_words(info.value, "429")


def test_slow_server_times_out(llm_settings: Settings, stub_server: StubOpenAIServer):
    stub_server.set_fault("slow", times=None, seconds=10)
    llm = build_chat_model(llm_settings.with_(timeout_s=0.5, max_retries=0))
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError) as info:
        llm.invoke("x")
    assert time.monotonic() - start < 3
    _assert_plain_words(info.value, "超时")


def test_malformed_json(llm_settings: Settings, stub_server: StubOpenAIServer):
    stub_server.set_fault("malformed_json", times=None)
    start = time.monotonic()
    with pytest.raises(ValueError) as info:  # json.JSONDecodeError
        build_chat_model(llm_settings).invoke("x")
    assert time.monotonic() - start < 5
    _assert_plain_words(info.value, "模型输出无法使用")


@pytest.mark.parametrize("streaming", [True, False])
def test_cut_stream(llm_settings: Settings, stub_server: StubOpenAIServer, streaming: bool):
    stub_server.enqueue("a long answer " * 20)
    stub_server.set_fault("cut_stream")
    llm = build_chat_model(llm_settings.with_(max_retries=0), streaming=streaming)
    start = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as info:
        "".join(c.content for c in llm.stream("x")) if streaming else llm.invoke("x")
    assert time.monotonic() - start < 5
    _assert_plain_words(info.value, "无法连接")


def test_empty_reply(llm_settings: Settings, stub_server: StubOpenAIServer):
    stub_server.set_fault("empty", times=None)
    llm = build_chat_model(llm_settings)
    assert llm.invoke("x").content == ""  # not an error at the transport level: callers must check
    start = time.monotonic()
    with pytest.raises(ValueError) as info:
        llm.with_structured_output(Person).invoke("x")
    assert time.monotonic() - start < 5
    _assert_plain_words(info.value, "模型输出无法使用")


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_invalid_structured_output(llm_settings: Settings, stub_server: StubOpenAIServer, method: str):
    stub_server.set_fault("invalid_structured", times=None)
    start = time.monotonic()
    with pytest.raises((ValidationError, ValueError)) as info:
        build_chat_model(llm_settings).with_structured_output(Person, method=method).invoke("x")
    assert time.monotonic() - start < 5
    _assert_plain_words(info.value, "模型输出无法使用")


def test_connection_refused(llm_settings: Settings, stub_server: StubOpenAIServer):
    llm = build_chat_model(llm_settings)
    stub_server.enqueue("before")
    assert llm.invoke("x").content == "before"  # leaves a keep-alive connection in the pool
    stub_server.set_fault("refused")
    start = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as info:
        llm.invoke("x")
    assert time.monotonic() - start < 5
    _assert_plain_words(info.value, "无法连接")


def test_nothing_listening(llm_settings: Settings):
    llm = build_chat_model(llm_settings.with_(base_url=unused_base_url()))
    start = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as info:
        llm.invoke("x")
    assert time.monotonic() - start < 5
    _assert_plain_words(info.value, "无法连接")


# ------------------------------------------------------------------ offline / blocked / guarded


def test_offline_settings_build_no_model(settings: Settings):
    assert settings.offline
    assert build_chat_model(settings) is None
    assert build_chat_model(settings.with_(model="gpt-4o-mini")) is None  # no key, no endpoint


@pytest.mark.parametrize("base_url", ["https://api.openai.com/v1", "http://10.1.2.3:8000/v1", ""])
def test_blocked_remote_endpoints(settings: Settings, base_url: str):
    remote = settings.with_(model="gpt-4o-mini", base_url=base_url, api_key="sk-real")
    with pytest.raises(ModelRequestsBlocked) as info:
        build_chat_model(remote)
    assert describe_model_error(info.value) == "测试环境禁止访问外部模型"
    assert "sk-real" not in str(info.value)


def test_loopback_allowed_while_blocked(settings: Settings):
    assert not models.model_requests_allowed()
    local = settings.with_(model="m", base_url="http://localhost:1/v1", api_key="k")
    assert build_chat_model(local) is not None


def test_network_guard_refuses_remote_addresses():
    """pytest-socket (configured in pyproject.toml) lets tests connect to loopback only."""
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("10.255.255.1", 80), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(SocketConnectBlockedError):
            s.connect(("10.255.255.1", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with socket.create_connection(s.getsockname(), timeout=1):  # loopback is allowed
            pass


def test_stub_model_is_a_provider_of_the_real_factory(settings):
    from devtools.doubles.chat_model import StubChatModel

    model = build_chat_model(settings.with_(provider="stub", model="any"))
    assert isinstance(model, StubChatModel) and model.invoke("x").text
    with pytest.raises(ValueError, match="no model provider"):
        build_chat_model(settings.with_(provider="nope", model="any"))


def test_network_guard_allows_loopback(stub_server: StubOpenAIServer):
    with socket.create_connection(("127.0.0.1", stub_server.port), timeout=2):
        pass
    a, b = socket.socketpair()
    a.close(), b.close()


def test_network_guard_stops_chat_openai_even_when_unblocked():
    """Defence in depth: a ChatOpenAI built around the factory still cannot leave the machine."""
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="m", base_url="http://10.255.255.1/v1", api_key="k", max_retries=0, timeout=5)
    start = time.monotonic()
    with pytest.raises((openai.APIConnectionError, SocketConnectBlockedError)):
        llm.invoke("x")
    assert time.monotonic() - start < 3


# ------------------------------------------------------------------ tokens.py


def test_counting_tokens_offline():
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("") == 0
    assert tokens.count_tokens("PagedAttention 把 KV cache 分页管理") > 5
    assert tokens.count_tokens("<|endoftext|>") > 1  # special tokens are plain text here
    messages = ["hi", ("user", "hello world"), {"role": "user", "content": "hi"}, HumanMessage("hi")]
    expected = sum(tokens.count_tokens(t) for t in ["hi", "hello world", "hi", "hi"]) + 4 * tokens.PER_MESSAGE_OVERHEAD
    assert tokens.count_message_tokens(messages) == expected
    assert tokens.count_tokens("hello world", "cl100k_base") == 2


def test_install_offline_bpe_writes_files_tiktoken_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tiktoken_ext import openai_public

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    target = tokens.install_offline_bpe()
    assert target == tmp_path / "cache"
    for url in tokens.BPE_URLS.values():
        assert (target / hashlib.sha1(url.encode()).hexdigest()).stat().st_size > 1_000_000
    # tiktoken reads its cache, checks the sha256 and would download on a mismatch (blocked here).
    assert openai_public.o200k_base()["name"] == "o200k_base"
    assert openai_public.cl100k_base()["name"] == "cl100k_base"
    mtimes = {p: p.stat().st_mtime_ns for p in target.iterdir()}
    tokens.install_offline_bpe()  # idempotent
    assert {p: p.stat().st_mtime_ns for p in target.iterdir()} == mtimes
    assert not list(target.glob("*.tmp"))


def test_cache_dir_defaults_and_respects_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert tokens.cache_dir() == tmp_path
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
    assert tokens.cache_dir().name == "data-gym-cache"
    assert os.environ["TIKTOKEN_CACHE_DIR"]  # set for tiktoken too


# ------------------------------------------------------------------ config.py


def test_from_env_defaults(tmp_path: Path):
    s = Settings.from_env({"HOME": str(tmp_path)}, dotenv=None)
    assert s.model == "offline" and s.offline and s.model_label == "offline"
    assert s.host == "127.0.0.1" and s.port == 7860 and s.lang == "zh" and s.feedback == "each"
    assert s.timeout_s == 20.0 and s.max_retries == 1 and s.notes_dirs == ()
    assert s.data_dir == tmp_path / ".local" / "share" / "llm-interviewer"
    assert s.db_path == s.data_dir / "sessions.sqlite" and s.index_dir == s.data_dir / "index"
    assert default_data_dir({"XDG_DATA_HOME": "/x"}) == Path("/x/llm-interviewer")


def test_dotenv_parsing_and_precedence(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\n\nexport INTERVIEWER_MODEL='deepseek-chat'\nOPENAI_API_KEY=\"sk-from-file\"\n"
        "OPENAI_BASE_URL = http://127.0.0.1:9/v1 \nINTERVIEWER_LANG=en\nnot a pair\nINTERVIEWER_TIMEOUT=7.5\n",
        encoding="utf-8",
    )
    assert read_dotenv(dotenv)["INTERVIEWER_MODEL"] == "deepseek-chat"
    assert read_dotenv(tmp_path / "missing.env") == {}
    s = Settings.from_env({"HOME": str(tmp_path), "INTERVIEWER_TIMEOUT": "3"}, dotenv=dotenv)
    assert s.model == "deepseek-chat" and s.api_key == "sk-from-file" and s.base_url == "http://127.0.0.1:9/v1"
    assert s.lang == "en" and s.timeout_s == 3.0  # the environment wins over the file
    assert not s.offline


def test_offline_rules():
    assert Settings().offline
    assert Settings(model="gpt-4o-mini").offline  # neither key nor endpoint
    assert not Settings(model="gpt-4o-mini", api_key="k").offline
    assert not Settings(model="qwen", base_url="http://127.0.0.1:8000/v1").offline
    assert Settings(model="OFFLINE", api_key="k").offline


def test_refuses_public_host_without_password():
    with pytest.raises(ValueError, match="INTERVIEWER_PASSWORD"):
        Settings.from_env({"INTERVIEWER_HOST": "0.0.0.0"}, dotenv=None)
    with pytest.raises(ValueError):
        Settings().with_(host="192.168.1.5")
    assert Settings(host="0.0.0.0", password="pw").host == "0.0.0.0"
    assert Settings(host="::1").host == "::1" and Settings(host="127.0.0.2").host == "127.0.0.2"
    with pytest.raises(ValueError, match="port"):
        Settings(port=70000).validate()


def test_secrets_hidden_from_repr():
    s = Settings(model="m", api_key=SECRET, password="hunter2", host="0.0.0.0")
    assert SECRET not in repr(s) and "hunter2" not in repr(s) and SECRET not in str(s)
    assert s.secrets() == [SECRET, "hunter2"]
    assert Settings().secrets() == []


def test_every_model_call_is_bounded(llm_settings, stub_server):
    """A runaway local model cannot generate until its context is full: each job sends its own max_tokens."""
    from interviewer.engine.moves import _model_text
    from interviewer.engine.prefetch import TextStream
    from interviewer.grading.contract import Target
    from interviewer.grading.registry import grade_answer
    from interviewer.knowledge.bank import default_bank
    from interviewer.models import MAX_TOKENS

    model = build_chat_model(llm_settings)
    stub_server.enqueue({"points": [], "feedback": "ok"})
    grade_answer(Target.of_question(default_bank()["kv_cache"]), "KV cache 缓存 K 和 V。", model)
    sent = stub_server.last_request
    assert (sent.get("max_tokens") or sent.get("max_completion_tokens")) == MAX_TOKENS["grade"]
    stub_server.enqueue("追问？")
    assert _model_text(model, "写一个追问", TextStream()) == "追问？"
    sent = stub_server.last_request
    assert (sent.get("max_tokens") or sent.get("max_completion_tokens")) == MAX_TOKENS["followup"]
    assert model.max_tokens is None  # the shared model is not changed


def test_streaming_stops_at_the_turn_deadline(llm_settings, stub_server):
    from interviewer.engine.moves import _model_text
    from interviewer.engine.prefetch import TextStream

    stub_server.enqueue("很长的追问" * 50)
    with pytest.raises(TimeoutError):
        _model_text(build_chat_model(llm_settings), "写一个追问", TextStream(), deadline=time.monotonic() - 1)
