"""The in-process stub chat model, shared by the tests and the benchmark command.

:class:`StubChatModel` is a LangChain chat model with queued replies, a default responder, a record of calls,
``bind_tools`` / ``with_structured_output`` / streaming and usage metadata, so agents and structured output run
with no server at all. It is also the model factory's ``stub`` provider (``register_stub_provider``).

Replies (here and for :class:`~devtools.doubles.openai_server.StubOpenAIServer`) are: a ``str`` (text), an
``AIMessage`` (used as is; its tool calls are sent as tool calls), a ``dict`` or pydantic model (the arguments of
a tool call to the bound tool whose parameters match, or the forced/first tool; with no tools, or with
``response_format`` on the server, its JSON is the content; ``{"name": <bound tool>, "args": {...}}`` names the
tool explicitly), or an exception (the model raises it; the server answers HTTP 500).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

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

def register_stub_provider() -> None:
    """Make ``provider="stub"`` in the settings build a :class:`StubChatModel` through the real model factory."""
    from interviewer.models import register_provider

    register_provider("stub", lambda settings, streaming=False: StubChatModel())
