"""A real OpenAI-compatible HTTP server on 127.0.0.1 (stdlib only) for the tests and the benchmark.

The *real* ``ChatOpenAI`` talks to :class:`StubOpenAIServer` over a socket: JSON and SSE streaming, tool calls,
structured output, a record of request bodies, and switchable faults (5xx, 429, slow, malformed JSON, cut
stream, empty reply, invalid structured output, connection refused). Replies are queued as for the stub
chat model. ``python -m devtools.doubles.openai_server --port N`` serves it until killed.
:func:`closed_port` / :func:`unused_base_url` give an address where nothing listens.

Over 400 lines on purpose: one wire protocol (request handler, SSE streaming, fault injection and the server that
owns them) read top to bottom; splitting it would scatter the format across files.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from langchain_core.messages import AIMessage

from devtools.doubles.chat_model import (
    DEFAULT_REPLY,
    FAULTS,
    INVALID_STRUCTURED,
    Reply,
    _as_dict,
    _call_id,
    _forced_tool,
    _message_text,
    _raise_if_exception,
    _resolve_dict,
    _tool_name,
    approx_tokens,
)

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.doubles.openai_server",
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
