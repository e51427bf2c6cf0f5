"""Test doubles for the chat model, shared by every test and by the benchmark command.

This module owns:

* :class:`StubChatModel` — an in-process LangChain chat model with queued replies, a default
  responder, a record of calls, ``bind_tools`` / ``with_structured_output`` / streaming and usage
  metadata, so agents and structured output run with no server at all.
* :class:`StubOpenAIServer` — a real OpenAI-compatible HTTP server on 127.0.0.1 (stdlib only) that
  the *real* ``ChatOpenAI`` talks to over a socket: JSON and SSE streaming, tool calls, structured
  output, a record of request bodies, and switchable faults (5xx, 429, slow, malformed JSON, cut
  stream, empty reply, invalid structured output, connection refused). ``python -m
  devtools.doubles.chat_model --port N`` serves it until killed.
* :func:`block_outbound_network` — lets sockets connect to loopback/AF_UNIX only (tests use it).
* :func:`closed_port` / :func:`unused_base_url` — an address where nothing listens.

Replies (for both stubs) are: a ``str`` (text), an ``AIMessage`` (used as is; its tool calls are
sent as tool calls), a ``dict`` or pydantic model (the arguments of a tool call to the bound tool
whose parameters match, or the forced/first tool; with no tools, or with ``response_format`` on the
server, its JSON is the content; ``{"name": <bound tool>, "args": {...}}`` names the tool
explicitly), or an exception (the model raises it; the server answers HTTP 500).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

__all__ = [
    "FAULTS",
    "NetworkBlocked",
    "StubCall",
    "StubChatModel",
    "StubOpenAIServer",
    "approx_tokens",
    "block_outbound_network",
    "closed_port",
    "network_blocked",
    "tool_call",
    "unused_base_url",
]

Reply = Any  # str | dict | BaseModel | AIMessage | BaseException
DEFAULT_REPLY = "stub reply"
INVALID_STRUCTURED = {"unexpected_field": "not in the schema"}
FAULTS = (
    "http_500",
    "http_429",
    "slow",
    "malformed_json",
    "cut_stream",
    "empty",
    "invalid_structured",
    "refused",
)

_TOKEN_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """A cheap, deterministic token estimate: one per CJK character, word or punctuation mark."""
    return len(_TOKEN_RE.findall(text or ""))


def tool_call(name: str, args: dict[str, Any] | None = None, *, id: str | None = None) -> AIMessage:
    """A reply that calls tool ``name`` with ``args`` (for either stub)."""
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": dict(args or {}), "id": id or _call_id(), "type": "tool_call"}],
    )


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return "" if content is None else str(content)


def _tool_name(tool: dict[str, Any]) -> str:
    return tool.get("function", tool).get("name", "")


def _forced_tool(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, dict):
        return (tool_choice.get("function") or tool_choice).get("name")
    if isinstance(tool_choice, str) and tool_choice not in ("any", "auto", "none", "required"):
        return tool_choice
    return None


def _pick_tool(tools: Sequence[dict], tool_choice: Any, args: dict, *, match_only: bool = False) -> str | None:
    """Which bound tool a dict reply calls: the forced one, else one whose parameters fit, else the first."""
    names = [_tool_name(t) for t in tools]
    forced = _forced_tool(tool_choice)
    if forced in names:
        return forced
    for tool, name in zip(tools, names):
        params = tool.get("function", tool).get("parameters") or {}
        props = set(params.get("properties") or {})
        required = set(params.get("required") or [])
        if props and required <= set(args) <= props:
            return name
    if match_only:
        return None
    return names[0] if names else None


def _resolve_dict(reply: dict, tools: Sequence[dict], tool_choice: Any, *, match_only: bool = False):
    """(tool name or None, args) for a dict reply."""
    names = {_tool_name(t) for t in tools}
    if set(reply) <= {"name", "args", "id"} and reply.get("name") in names and isinstance(reply.get("args"), dict):
        return reply["name"], dict(reply["args"])
    return _pick_tool(tools, tool_choice, reply, match_only=match_only), dict(reply)


def _raise_if_exception(reply: Reply) -> None:
    if isinstance(reply, BaseException):
        raise reply
    if isinstance(reply, type) and issubclass(reply, BaseException):
        raise reply()


def _as_dict(reply: Reply) -> Reply:
    return reply.model_dump(mode="json") if isinstance(reply, BaseModel) and not isinstance(reply, BaseMessage) else reply


# --------------------------------------------------------------------------------------------
# In-process chat model
# --------------------------------------------------------------------------------------------


class StubCall(list):
    """One call to :class:`StubChatModel`: the list of messages received, plus what was bound."""

    def __init__(
        self,
        messages: Sequence[BaseMessage],
        tools: Sequence[dict] = (),
        tool_choice: Any = None,
        kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(messages)
        self.tools: list[dict] = list(tools)
        """OpenAI-format tool specs bound for this call."""
        self.tool_choice = tool_choice
        self.kwargs: dict[str, Any] = dict(kwargs or {})
        """Other call/bind keyword arguments (``stop``, ``model``, ``strict`` …)."""

    @property
    def messages(self) -> list[BaseMessage]:
        return list(self)

    @property
    def tool_names(self) -> list[str]:
        return [_tool_name(t) for t in self.tools]

    @property
    def text(self) -> str:
        """All message texts, one per line (for asserting on prompt contents)."""
        return "\n".join(_message_text(m.content) for m in self)


class StubChatModel(BaseChatModel):
    """A scripted chat model: replies come from a queue, then from ``responder``/``default_reply``.

    ``enqueue("text", {"score": 3}, AIMessage(...), TimeoutError("x"))``; ``calls`` records what it
    received. Thread-safe. Accepts the standard params (``temperature``, ``max_tokens``, ``timeout``,
    ``stop``, ``max_retries``, ``api_key``) and ignores them.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    model_name: str = Field(default="stub-model", alias="model")
    responder: Callable[[StubCall], Reply] | None = None
    """Called with the :class:`StubCall` (a list of messages) when the queue is empty."""
    default_reply: Any = DEFAULT_REPLY
    """The reply when the queue is empty and there is no responder."""
    chunk_chars: int = 8
    """Characters per streamed text chunk."""
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    stop: list[str] | None = None
    max_retries: int = 0
    api_key: SecretStr | None = None
    streaming: bool = False

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _queue: deque = PrivateAttr(default_factory=deque)
    _calls: list = PrivateAttr(default_factory=list)

    # -- scripting ------------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> StubChatModel:
        """Queue replies, consumed one per call in order."""
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Queued replies not consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def calls(self) -> list[StubCall]:
        """A snapshot of the calls received so far (oldest first)."""
        with self._lock:
            return list(self._calls)

    @property
    def last_call(self) -> StubCall | None:
        with self._lock:
            return self._calls[-1] if self._calls else None

    def reset(self) -> None:
        """Forget queued replies and recorded calls."""
        with self._lock:
            self._queue.clear()
            self._calls.clear()

    # -- LangChain interface ------------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "stub-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="stub",
            ls_model_name=kwargs.get("model") if isinstance(kwargs.get("model"), str) else self.model_name,
            ls_model_type="chat",
        )
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | Any],
        *,
        tool_choice: str | dict | bool | None = None,
        **kwargs: Any,
    ) -> Runnable:
        """A bound copy: calls through it record the tools and answer dict replies as tool calls."""
        specs = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is True:
            tool_choice = "any"
        return self.bind(tools=specs, tool_choice=tool_choice, **kwargs)

    def _next(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> AIMessage:
        kwargs = dict(kwargs)
        tools = kwargs.pop("tools", None) or []
        tool_choice = kwargs.pop("tool_choice", None)
        if stop:
            kwargs["stop"] = stop
        call = StubCall(messages, tools, tool_choice, kwargs)
        with self._lock:
            self._calls.append(call)
            queued = bool(self._queue)
            reply = self._queue.popleft() if queued else None
        if not queued:
            reply = self.responder(call) if self.responder else self.default_reply
        _raise_if_exception(reply)
        message = self._to_message(_as_dict(reply), tools, tool_choice)
        stop = stop or self.stop
        if stop and isinstance(message.content, str) and not message.tool_calls:
            cut = min((message.content.find(s) for s in stop if s in message.content), default=-1)
            if cut >= 0:
                message = message.model_copy(update={"content": message.content[:cut]})
        if message.usage_metadata is None:
            usage_in = sum(approx_tokens(_message_text(m.content)) + 4 for m in messages)
            usage_out = approx_tokens(_message_text(message.content)) + sum(
                approx_tokens(json.dumps(tc["args"], ensure_ascii=False)) for tc in message.tool_calls
            )
            message = message.model_copy(
                update={
                    "usage_metadata": {
                        "input_tokens": usage_in,
                        "output_tokens": usage_out,
                        "total_tokens": usage_in + usage_out,
                    }
                }
            )
        meta = {
            "model_name": kwargs.get("model") or self.model_name,
            "finish_reason": "tool_calls" if message.tool_calls else "stop",
            **message.response_metadata,
        }
        return message.model_copy(update={"response_metadata": meta})

    @staticmethod
    def _to_message(reply: Reply, tools: Sequence[dict], tool_choice: Any) -> AIMessage:
        if isinstance(reply, AIMessage):
            if any(not tc.get("id") for tc in reply.tool_calls):
                fixed = [{**tc, "id": tc.get("id") or _call_id()} for tc in reply.tool_calls]
                return reply.model_copy(update={"tool_calls": fixed})
            return reply.model_copy()
        if isinstance(reply, BaseMessage):
            return AIMessage(content=reply.content)
        if isinstance(reply, dict):
            name, args = _resolve_dict(reply, tools, tool_choice)
            if name is None:
                return AIMessage(content=json.dumps(reply, ensure_ascii=False))
            return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": _call_id(), "type": "tool_call"}])
        return AIMessage(content="" if reply is None else str(reply))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._next(messages, stop, kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._next(messages, stop, kwargs)

        def emit(chunk: AIMessageChunk, token: str = "") -> ChatGenerationChunk:
            gen = ChatGenerationChunk(message=chunk)
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=gen)
            return gen

        content = message.content
        if isinstance(content, str):
            step = max(1, self.chunk_chars)
            pieces = [content[i : i + step] for i in range(0, len(content), step)]
            for i, piece in enumerate(pieces):
                extra = message.additional_kwargs if i == 0 else {}
                yield emit(AIMessageChunk(content=piece, additional_kwargs=extra), piece)
        elif content:
            yield emit(AIMessageChunk(content=content, additional_kwargs=message.additional_kwargs))
        for index, tc in enumerate(message.tool_calls):
            yield emit(
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": tc["name"],
                            "args": json.dumps(tc["args"], ensure_ascii=False),
                            "id": tc["id"],
                            "index": index,
                            "type": "tool_call_chunk",
                        }
                    ],
                )
            )
        yield emit(
            AIMessageChunk(
                content="",
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )


# --------------------------------------------------------------------------------------------
# A real OpenAI-compatible HTTP server on 127.0.0.1
# --------------------------------------------------------------------------------------------


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` where nothing listens (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def unused_base_url() -> str:
    """An OpenAI base URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{closed_port()}/v1"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, handler, stub: StubOpenAIServer):
        self.stub = stub
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:  # quiet on client hang-ups
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StubOpenAI/1.0"
    timeout = 30  # idle keep-alive connections end after this

    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr logging
        pass

    def setup(self) -> None:
        super().setup()
        self.server.stub._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.stub._track(self.connection, False)

    # -- plumbing -------------------------------------------------------------------------------
    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self._send_bytes(status, data, "application/json", headers)

    def _send_bytes(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, headers)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _sse(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        data = f"data: {text}\n\n".encode()
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _hang_up(self) -> None:
        """Drop the connection abruptly (no terminating chunk / short body)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    # -- routes -----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        stub = self.server.stub
        path = urlparse(self.path).path.rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send_json(
                200,
                {"object": "list", "data": [{"id": stub.model, "object": "model", "created": 0, "owned_by": "stub"}]},
            )
        elif path == "/_stub/requests":
            self._send_json(200, stub.requests)
        elif path in ("/_stub/health", ""):
            self._send_json(200, {"ok": True, "base_url": stub.base_url})
        else:
            self._error(404, f"no route GET {path}", "invalid_request_error")

    def do_POST(self) -> None:
        stub = self.server.stub
        path = urlparse(self.path).path.rstrip("/")
        try:
            body = self._read_body()
        except (ValueError, UnicodeDecodeError):
            self._error(400, "request body is not JSON", "invalid_request_error")
            return
        if path in ("/v1/chat/completions", "/chat/completions"):
            self._chat(body)
        elif path == "/_stub/enqueue":
            stub.enqueue(*(body.get("replies") or []))
            self._send_json(200, {"pending": stub.pending})
        elif path == "/_stub/fault":
            stub.set_fault(body["name"], times=body.get("times", 1), seconds=body.get("seconds"))
            self._send_json(200, {"ok": True})
        elif path == "/_stub/reset":
            stub.reset()
            self._send_json(200, {"ok": True})
        else:
            self._error(404, f"no route POST {path}", "invalid_request_error")

    def _chat(self, body: dict[str, Any]) -> None:
        stub = self.server.stub
        stub._record(body, {k.lower(): v for k, v in self.headers.items()})
        fault, seconds = stub._take_fault()
        stream = bool(body.get("stream"))
        if fault == "http_500":
            self._error(500, "stub: internal server error", "server_error")
            return
        if fault == "http_429":
            self._error(429, "stub: rate limit reached", "rate_limit_error", {"Retry-After": "0"})
            return
        if fault == "malformed_json":
            broken = '{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "mess'
            if stream:
                self._start_sse()
                self._sse(broken)
                self._sse("[DONE]")
                self._end_chunked()
            else:
                self._send_bytes(200, broken.encode(), "application/json")
            return
        if fault == "slow":
            if stub._stopping.wait(seconds if seconds is not None else stub.slow_seconds):
                return
        if fault == "empty":
            content, calls = "", []
        elif fault == "invalid_structured":
            content, calls = stub._invalid_structured(body)
        else:
            try:
                content, calls = stub._answer(body)
            except Exception as exc:  # a queued exception, or a responder that failed
                self._error(500, f"stub: {type(exc).__name__}: {exc}", "server_error")
                return
        cut = fault == "cut_stream"
        if stream:
            self._stream(body, content, calls, cut)
        else:
            self._complete(body, content, calls, cut)

    def _usage(self, body: dict[str, Any], content: str, calls: list[dict]) -> dict[str, int]:
        prompt = sum(approx_tokens(_message_text(m.get("content"))) + 4 for m in body.get("messages") or [])
        completion = approx_tokens(content) + sum(approx_tokens(c["function"]["arguments"]) for c in calls)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _complete(self, body: dict[str, Any], content: str, calls: list[dict], cut: bool) -> None:
        stub = self.server.stub
        message: dict[str, Any] = {"role": "assistant", "content": content if (content or not calls) else None}
        message["refusal"] = None
        if calls:
            message["tool_calls"] = calls
        payload = {
            "id": stub._completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or stub.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": self._usage(body, content, calls),
        }
        data = json.dumps(payload, ensure_ascii=False).encode()
        if not cut:
            self._send_bytes(200, data, "application/json")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self._hang_up()

    def _stream(self, body: dict[str, Any], content: str, calls: list[dict], cut: bool) -> None:
        stub = self.server.stub
        cid, created, model = stub._completion_id(), int(time.time()), body.get("model") or stub.model

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
        step = max(1, stub.chunk_chars)
        events += [chunk({"content": content[i : i + step]}) for i in range(0, len(content), step)]
        for index, call in enumerate(calls):
            args = call["function"]["arguments"]
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for i in range(0, len(args), step * 2):
                events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + step * 2]}}]}))
        events.append(chunk({}, "tool_calls" if calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": self._usage(body, content, calls),
                }
            )
        self._start_sse()
        if cut:
            for event in events[: max(2, len(events) // 2)]:
                self._sse(event)
            self._hang_up()
            return
        for event in events:
            self._sse(event)
            if stub.chunk_delay_s:  # a model that writes token by token
                time.sleep(stub.chunk_delay_s)
        self._sse("[DONE]")
        self._end_chunked()


class StubOpenAIServer:
    """A local OpenAI-compatible server for the real ``ChatOpenAI`` (``with StubOpenAIServer() as srv``).

    ``srv.base_url`` (``http://127.0.0.1:PORT/v1``) goes into ``Settings.base_url``. Replies come
    from :meth:`enqueue`, then ``responder(request_body)``, then ``default_reply``. ``requests`` holds
    every chat-completion request body (``request_headers`` their headers, lower-case names). :meth:`set_fault`
    switches on one of :data:`FAULTS` for the next ``times`` requests (``times=None``: until
    :meth:`clear_faults`). Faults that answer with an error or their own body (``http_500``,
    ``http_429``, ``malformed_json``, ``empty``, ``invalid_structured``) leave the queue alone, so a
    retry gets the queued reply; ``slow`` and ``cut_stream`` deliver (part of) the queued reply.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Callable[[dict[str, Any]], Reply] | None = None,
        default_reply: Reply = DEFAULT_REPLY,
        model: str = "stub-model",
        chunk_chars: int = 8,
        chunk_delay_s: float = 0.0,
        slow_seconds: float = 5.0,
        start: bool = True,
    ):
        self.host, self._requested_port = host, port
        self.responder = responder
        self.default_reply = default_reply
        self.model = model
        self.chunk_chars = chunk_chars
        self.chunk_delay_s = chunk_delay_s
        self.slow_seconds = slow_seconds
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._queue: deque = deque()
        self._faults: deque = deque()  # [name, remaining (None = persistent), seconds]
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._seq = 0
        if start:
            self.start()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> StubOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self._port or self._requested_port), _Handler, self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="stub-openai", daemon=True)
        self._thread.start()
        return self

    def _stop_listening(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # keep-alive connections too: the next request must be refused
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Stop serving (idempotent); wakes requests sleeping in the ``slow`` fault."""
        self._stopping.set()
        self._stop_listening()

    def __enter__(self) -> StubOpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def listening(self) -> bool:
        return self._httpd is not None

    # -- scripting ------------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> StubOpenAIServer:
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def set_fault(self, name: str, *, times: int | None = 1, seconds: float | None = None) -> StubOpenAIServer:
        """Fail the next ``times`` chat requests with fault ``name`` (``times=None``: every request).

        ``seconds`` is the delay of ``slow``. ``refused`` takes effect at once and for good: the
        listening socket and open connections are closed, so connecting is refused.
        """
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; choose from {', '.join(FAULTS)}")
        if name == "refused":
            self._stop_listening()
            return self
        with self._lock:
            self._faults.append([name, times, seconds])
        return self

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget queued replies, faults and recorded requests."""
        with self._lock:
            self._queue.clear()
            self._faults.clear()
            self.requests.clear()
            self.request_headers.clear()

    @property
    def last_request(self) -> dict[str, Any] | None:
        with self._lock:
            return self.requests[-1] if self.requests else None

    def prompt_text(self, index: int = -1) -> str:
        """The text of every message of request ``index``, one per line (for prompt assertions)."""
        with self._lock:
            body = self.requests[index]
        return "\n".join(_message_text(m.get("content")) for m in body.get("messages") or [])

    # -- used by the handler --------------------------------------------------------------------
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)

    def _completion_id(self) -> str:
        with self._lock:
            self._seq += 1
            return f"chatcmpl-stub{self._seq}"

    def _take_fault(self) -> tuple[str | None, float | None]:
        with self._lock:
            if not self._faults:
                return None, None
            fault = self._faults[0]
            name, remaining, seconds = fault
            if remaining is not None:
                fault[1] -= 1
                if fault[1] <= 0:
                    self._faults.popleft()
            return name, seconds

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.responder(body) if self.responder else self.default_reply

    def _answer(self, body: dict[str, Any]) -> tuple[str, list[dict]]:
        """(content, OpenAI tool calls) for the next reply."""
        reply = _as_dict(self._next_reply(body))
        _raise_if_exception(reply)
        tools = body.get("tools") or []
        if isinstance(reply, AIMessage):
            calls = [
                {
                    "id": tc.get("id") or _call_id(),
                    "type": "function",
                    "function": {"name": tc["name"], "arguments": json.dumps(tc["args"], ensure_ascii=False)},
                }
                for tc in reply.tool_calls
            ]
            return _message_text(reply.content), calls
        if isinstance(reply, dict):
            structured = bool(body.get("response_format"))
            name, args = _resolve_dict(reply, tools, body.get("tool_choice"), match_only=structured)
            if name is None:
                return json.dumps(reply, ensure_ascii=False), []
            call = {
                "id": _call_id(),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)},
            }
            return "", [call]
        return ("" if reply is None else str(reply)), []

    def _invalid_structured(self, body: dict[str, Any]) -> tuple[str, list[dict]]:
        tools = body.get("tools") or []
        bad = json.dumps(INVALID_STRUCTURED)
        if tools and not body.get("response_format"):
            name = _forced_tool(body.get("tool_choice")) or _tool_name(tools[0])
            return "", [{"id": _call_id(), "type": "function", "function": {"name": name, "arguments": bad}}]
        return bad, []


# --------------------------------------------------------------------------------------------
# Outbound network guard
# --------------------------------------------------------------------------------------------


class NetworkBlocked(OSError):
    """A connection (or DNS lookup) to somewhere other than this machine, refused in tests."""


_LOCAL_NAMES = {"localhost", "localhost.", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_local_host(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%", 1)[0]
    if host.lower() in _LOCAL_NAMES or host in ("", "0.0.0.0", "::"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def _is_ip_literal(host: Any) -> bool:
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%", 1)[0])
        return True
    except ValueError:
        return False


_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex
_REAL_CREATE_CONNECTION = socket.create_connection
_REAL_GETADDRINFO = socket.getaddrinfo


def _check_address(family: Any, address: Any) -> None:
    if family == getattr(socket, "AF_UNIX", object()) or isinstance(address, (str, bytes)):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if not _is_local_host(host):
        raise NetworkBlocked(f"network access blocked in tests: {address!r} is not a loopback address")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self.family, address)
    return _REAL_CONNECT(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self.family, address)
    return _REAL_CONNECT_EX(self, address)


def _guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    _check_address(socket.AF_INET, address)
    return _REAL_CREATE_CONNECTION(address, *args, **kwargs)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any):
    if not (_is_local_host(host) or _is_ip_literal(host) or host == socket.gethostname()):
        raise NetworkBlocked(f"network access blocked in tests: DNS lookup of {host!r}")
    return _REAL_GETADDRINFO(host, *args, **kwargs)


def network_blocked() -> bool:
    """Whether :func:`block_outbound_network` is in force right now."""
    return socket.socket.connect is _guarded_connect and socket.create_connection is _guarded_create_connection


def block_outbound_network() -> Callable[[], None]:
    """Refuse connections except to loopback and AF_UNIX; refuse DNS lookups of other names.

    Patches ``socket.socket.connect``/``connect_ex``, ``socket.create_connection`` and
    ``socket.getaddrinfo`` with guards that raise :class:`NetworkBlocked` (an ``OSError``).
    Idempotent: call it again to re-apply after something else (pytest-socket's teardown does)
    put the originals back. Returns a function that removes the guards.
    """
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.create_connection = _guarded_create_connection  # type: ignore[assignment]
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]

    def restore() -> None:
        socket.socket.connect = _REAL_CONNECT  # type: ignore[method-assign]
        socket.socket.connect_ex = _REAL_CONNECT_EX  # type: ignore[method-assign]
        socket.create_connection = _REAL_CREATE_CONNECTION  # type: ignore[assignment]
        socket.getaddrinfo = _REAL_GETADDRINFO  # type: ignore[assignment]

    return restore


# --------------------------------------------------------------------------------------------
# python -m devtools.doubles.chat_model --port N
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.doubles.chat_model",
        description="Serve the stub OpenAI-compatible API on 127.0.0.1 until killed. Control it over HTTP: "
        "POST /_stub/enqueue {'replies': [...]}, POST /_stub/fault {'name', 'times', 'seconds'}, "
        "POST /_stub/reset, GET /_stub/requests.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="default reply text")
    parser.add_argument("--fault", choices=[f for f in FAULTS if f != "refused"], help="persistent fault")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)

    server = StubOpenAIServer(port=args.port, default_reply=args.reply, slow_seconds=args.slow_seconds)
    if args.fault:
        server.set_fault(args.fault, times=None)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(server.base_url, flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
