"""Chat model factory: offline (no LLM), any OpenAI-compatible endpoint, or another registered provider.

Providers are a registry (``settings.provider`` → builder); ``openai`` (OpenAI, DeepSeek, Qwen, vLLM, Ollama …)
is built in and the test doubles register ``stub``. Logic modules receive the model (or ``None`` for offline)
as an argument. Tests turn live calls off with :func:`allow_model_requests`; then only endpoints on this
machine (the stub server) may be built.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from langchain_core.language_models import BaseChatModel

from interviewer.config import Settings, is_loopback

_ALLOW_MODEL_REQUESTS = True


class ModelRequestsBlocked(RuntimeError):
    """A live model endpoint was requested while live calls are switched off."""


def allow_model_requests(allowed: bool) -> None:
    """Global switch (as pydantic-ai's ALLOW_MODEL_REQUESTS): False refuses non-loopback endpoints."""
    global _ALLOW_MODEL_REQUESTS
    _ALLOW_MODEL_REQUESTS = allowed


def model_requests_allowed() -> bool:
    return _ALLOW_MODEL_REQUESTS


def _is_local(base_url: str) -> bool:
    host = urlparse(base_url).hostname or ""
    return bool(base_url) and is_loopback(host)


Builder = Callable[..., BaseChatModel]  # (settings, streaming=False) -> model
_PROVIDERS: dict[str, Builder] = {}


def register_provider(name: str, builder: Builder) -> None:
    """Make ``settings.provider == name`` build its model with ``builder(settings, streaming=...)``."""
    _PROVIDERS[name] = builder


def build_chat_model(settings: Settings, *, streaming: bool = False) -> BaseChatModel | None:
    """The configured chat model, or ``None`` when the settings say offline."""
    if settings.offline:
        return None
    if settings.provider not in _PROVIDERS:
        raise ValueError(f"no model provider {settings.provider!r}; known: {', '.join(sorted(_PROVIDERS))}")
    return _PROVIDERS[settings.provider](settings, streaming=streaming)


def _openai_compatible(settings: Settings, streaming: bool = False) -> BaseChatModel:
    if not _ALLOW_MODEL_REQUESTS and not _is_local(settings.base_url):
        raise ModelRequestsBlocked(
            f"live model requests are disabled (tests): refusing {settings.model} at {settings.base_url or 'default endpoint'}"
        )
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=settings.model,
        base_url=settings.base_url or None,
        api_key=settings.api_key or "EMPTY",  # local servers (vLLM, Ollama) accept any key
        temperature=settings.temperature,
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
        stream_usage=True,
        **({"streaming": True} if streaming else {}),  # an explicit False would disable .stream()
    )


register_provider("openai", _openai_compatible)


MAX_TOKENS = {"grade": 700, "followup": 300, "reverse": 500}  # per call, by job: a runaway generation stops here


def bounded(model: BaseChatModel | None, job: str) -> BaseChatModel | None:
    """``model`` with ``max_tokens`` set for ``job`` (``MAX_TOKENS``), so no call can run until the context is
    full; a model without that setting is returned as it is."""
    if model is None or "max_tokens" not in type(model).model_fields:
        return model
    return model.model_copy(update={"max_tokens": MAX_TOKENS[job]})


def describe_model_error(exc: BaseException) -> str:
    """A plain-words reason for a failed model call, never containing secrets."""
    import openai

    kinds = [
        (openai.APITimeoutError, "模型响应超时"),
        (openai.APIConnectionError, "无法连接模型服务"),
        (openai.RateLimitError, "模型服务限流（429）"),
        (openai.AuthenticationError, "模型服务拒绝了 API key"),
        (openai.InternalServerError, "模型服务内部错误（5xx）"),
        (openai.APIStatusError, "模型服务返回错误"),
    ]
    for cls, words in kinds:
        if isinstance(exc, cls):
            return words
    if isinstance(exc, ModelRequestsBlocked):
        return "测试环境禁止访问外部模型"
    return f"模型输出无法使用（{type(exc).__name__}）"
