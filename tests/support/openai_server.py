"""A scripted, OpenAI-compatible HTTP server for tests (standard library only).

Tests that exercise the LLM path must not patch the ``openai`` client: they
point the *real* client (or LangChain's ``ChatOpenAI``) at this server, which
speaks the Chat Completions wire protocol over real HTTP on 127.0.0.1.

Typical use::

    from support.openai_server import FakeOpenAIServer, Fault

    with FakeOpenAIServer() as server:
        server.enqueue("Hello there!", Fault.status(429, "slow down"), "Second reply")
        client = openai.OpenAI(api_key="test-key", base_url=server.base_url, max_retries=0)
        ...
        server.assert_complete()           # every scripted item was consumed
        body = server.requests[0]["json"]  # what the client actually sent

Endpoints
---------
``POST /v1/chat/completions``
    Consumes the next scripted item (FIFO). A ``str`` item is the assistant's
    reply; a :class:`Fault` item misbehaves in a chosen way. The request's
    ``"stream"`` flag is honoured: non-streaming requests get a
    ``chat.completion`` JSON object; streaming requests get ``text/event-stream``
    with ``chat.completion.chunk`` objects (a role chunk, one content delta per
    word, a ``finish_reason: "stop"`` chunk, an optional usage chunk when
    ``stream_options.include_usage`` is set, then ``data: [DONE]``).
    With nothing scripted it answers HTTP 500 with an error whose message says
    ``"no scripted reply"``, so a test that forgot to script a reply fails loudly.
``GET /v1/models``
    A list holding one model (``model`` constructor argument).
Anything else
    HTTP 404 with an OpenAI-style error body.

Every request (any method, any path, including unscripted ones) is appended to
:attr:`FakeOpenAIServer.requests` *before* it is answered.

Protocol notes
--------------
* The server speaks HTTP/1.1 with keep-alive, like the real API. Streaming
  bodies use chunked transfer encoding, so :meth:`Fault.cut_stream` (which
  closes the socket before the terminating chunk) is seen by the client as a
  dropped connection (``openai.APIConnectionError``), not as a normal end.
* Each connection is handled in its own daemon thread, so a
  :meth:`Fault.delay` stalls only the request it answers.
* ``openai`` 3.57 ignores ``Retry-After: 0`` (it only honours delays ``> 0``)
  and would fall back to its ~0.5 s exponential backoff; 429 faults therefore
  also send ``retry-after-ms: 1`` so client retries stay fast.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import urlsplit

__all__ = ["FakeOpenAIServer", "Fault", "NO_SCRIPTED_REPLY"]

#: Message of the HTTP 500 answered when a chat request arrives with nothing queued.
NO_SCRIPTED_REPLY = "no scripted reply"

_MALFORMED_BODY = b'{"id": "chatcmpl-broken", "choices": [ this is not json'

_DEFAULT_CUT_REPLY = "This reply is cut off before it reaches the end of the sentence"

# OpenAI error "type" values by status code, for realistic error bodies.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour, consumed from the queue like a reply string.

    Build one with the constructors below rather than by hand:

    * :meth:`status` - an HTTP error status with an OpenAI-style error body.
    * :meth:`delay` - wait before answering (to trigger client timeouts).
    * :meth:`malformed` - HTTP 200 whose body is not valid JSON.
    * :meth:`cut_stream` - a response that stops part-way and drops the connection.
    * :meth:`trickle` - a streamed reply whose words arrive slowly, one by one.
    """

    kind: str
    code: int = 200
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    then: "str | Fault | None" = None
    after_words: int = 0
    reply: str = ""

    @classmethod
    def status(
        cls, code: int, message: str = "scripted error", *, headers: dict[str, str] | None = None
    ) -> "Fault":
        """Answer HTTP ``code`` with ``{"error": {"message": message, ...}}``.

        A 429 gets ``retry-after: 0`` and ``retry-after-ms: 1`` by default (see
        the module notes); pass ``headers`` to send others instead.
        """
        if headers is None:
            headers = {"retry-after": "0", "retry-after-ms": "1"} if code == 429 else {}
        return cls(kind="status", code=code, message=message, headers=tuple(headers.items()))

    @classmethod
    def delay(cls, seconds: float, then: "str | Fault | None" = None) -> "Fault":
        """Sleep ``seconds``, then answer with ``then`` (a reply or another Fault).

        With ``then=None`` the connection is closed without any answer: the
        client is expected to have timed out already. The sleep ends early if
        the server is closed, so a long delay never slows down teardown.
        """
        return cls(kind="delay", seconds=seconds, then=then)

    @classmethod
    def trickle(cls, seconds_per_word: float, reply: str) -> "Fault":
        """Stream ``reply`` one word every ``seconds_per_word`` (each read is quick, the whole is slow).

        Non-streaming requests get the whole reply after the same total wait. The wait
        ends early if the server is closed or the client goes away.
        """
        return cls(kind="trickle", seconds=seconds_per_word, reply=reply)

    @classmethod
    def malformed(cls) -> "Fault":
        """Answer HTTP 200 with a payload that is not valid JSON.

        Non-streaming: ``Content-Type: application/json`` and a truncated,
        invalid JSON body. Streaming: a proper ``text/event-stream`` whose one
        ``data:`` event carries that invalid JSON (then ``[DONE]``); a bare
        non-SSE body would be silently read by ``openai`` as an empty stream.

        Note: ``openai`` 3.57 does not wrap the decoding failure; the caller
        sees ``json.JSONDecodeError`` (a ``ValueError``), not an ``openai.OpenAIError``.
        """
        return cls(kind="malformed")

    @classmethod
    def cut_stream(cls, after_words: int, reply: str = _DEFAULT_CUT_REPLY) -> "Fault":
        """Send the first ``after_words`` words of ``reply``, then drop the connection.

        For a streaming request: the role chunk and ``after_words`` content
        deltas, with no finish chunk, no ``[DONE]`` and no terminating HTTP
        chunk. For a non-streaming request: a ``Content-Length`` for the whole
        body but only part of it.
        """
        return cls(kind="cut_stream", after_words=after_words, reply=reply)


def _split_words(text: str) -> list[str]:
    """Split ``text`` into per-word deltas that concatenate back to ``text`` exactly."""
    return re.findall(r"^\s+|\S+\s*", text)


def _count_tokens(text: str) -> int:
    """A crude token count (whitespace-separated words), good enough for ``usage``."""
    return len(text.split())


def _prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return " ".join(parts)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its owner and its open connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: "FakeOpenAIServer") -> None:
        self.owner = owner
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive + chunked streaming, like the real API
    server_version = "FakeOpenAI/1.0"
    timeout = 10  # idle keep-alive connections are dropped after this many seconds
    server: _Server

    # -- connection bookkeeping --------------------------------------------------
    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    # -- request dispatch --------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            body = self._record_request()
            path = urlsplit(self.path).path.rstrip("/")
            owner = self.server.owner
            if self.command == "POST" and path == "/v1/chat/completions":
                item = owner._next_item()
                if item is None:
                    self._send_error(500, NO_SCRIPTED_REPLY + " queued for this chat completion request")
                else:
                    self._answer(item, body if isinstance(body, dict) else {})
            elif self.command == "GET" and path == "/v1/models":
                self._send_json(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": owner.model, "object": "model", "created": 0, "owned_by": "fake-openai-server"}
                        ],
                    },
                )
            else:
                self._send_error(404, f"no route for {self.command} {self.path}")
        except OSError:  # the client went away (e.g. it timed out): nothing left to say
            self.close_connection = True

    def _record_request(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        self.server.owner._record(
            {
                "method": self.command,
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "json": parsed,
            }
        )
        return parsed

    def _answer(self, item: "str | Fault", body: dict[str, Any]) -> None:
        model = body.get("model") or self.server.owner.model
        stream = bool(body.get("stream"))
        if isinstance(item, str):
            if stream:
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self._send_stream(model, item, _prompt_text(body), include_usage)
            else:
                self._send_json(200, self._completion(model, item, _prompt_text(body)))
            return

        if item.kind == "status":
            self._send_error(item.code, item.message, dict(item.headers))
        elif item.kind == "delay":
            if self.server.stopping.wait(item.seconds) or item.then is None:
                self.close_connection = True  # leave without answering
            else:
                self._answer(item.then, body)
        elif item.kind == "malformed":
            if stream:  # a well-formed SSE stream whose event payload is not JSON
                self._start_chunked()
                self._write_chunk(b"data: " + _MALFORMED_BODY + b"\n\n")
                self._write_chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self._send_raw(200, _MALFORMED_BODY, "application/json")
        elif item.kind == "cut_stream":
            self._send_cut(model, item, stream)
        elif item.kind == "trickle":
            self._send_trickle(model, item, stream)
        else:  # pragma: no cover - only reachable by building Fault(kind=...) by hand
            self._send_error(500, f"unknown fault kind {item.kind!r}")

    # -- response builders -------------------------------------------------------
    def _completion(self, model: str, content: str, prompt: str) -> dict[str, Any]:
        return {
            "id": self.server.owner._new_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(prompt, content),
        }

    def _chunks(self, model: str, content: str, include_usage: bool) -> Iterable[dict[str, Any]]:
        """The chunk objects of a streamed reply, without the final usage chunk."""
        ident, created = self.server.owner._new_id(), int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            obj: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                obj["usage"] = None  # as the real API does: null on every chunk but the last
            return obj

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for word in _split_words(content):
            yield chunk({"content": word})
        yield chunk({}, "stop")

    def _send_stream(self, model: str, content: str, prompt: str, include_usage: bool) -> None:
        self._start_chunked()
        for obj in self._chunks(model, content, include_usage):
            self._write_event(obj)
        if include_usage:
            ident = self.server.owner._new_id()
            self._write_event(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": _usage(prompt, content),
                }
            )
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")  # terminating chunk: the body is complete

    def _send_cut(self, model: str, fault: Fault, stream: bool) -> None:
        self.close_connection = True
        if stream:
            self._start_chunked()
            chunks = list(self._chunks(model, fault.reply, include_usage=False))
            for obj in chunks[: 1 + fault.after_words]:  # role chunk + N word deltas
                self._write_event(obj)
            return  # no finish chunk, no [DONE], no terminating chunk: the socket just closes
        words = _split_words(fault.reply)
        full = json.dumps(self._completion(model, fault.reply, "")).encode()
        partial = json.dumps(self._completion(model, "".join(words[: fault.after_words]), "")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(full)))
        self.end_headers()
        self.wfile.write(partial[: len(partial) // 2])

    def _send_trickle(self, model: str, fault: Fault, stream: bool) -> None:
        if not stream:
            words = len(_split_words(fault.reply))
            if not self.server.stopping.wait(fault.seconds * words):
                self._send_json(200, self._completion(model, fault.reply, ""))
            return
        self._start_chunked()
        for i, obj in enumerate(self._chunks(model, fault.reply, include_usage=False)):
            if i and self.server.stopping.wait(fault.seconds):  # the role chunk comes at once
                return
            self._write_event(obj)
            self.wfile.flush()
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    # -- low-level writers -------------------------------------------------------
    def _send_error(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        error = {
            "error": {
                "message": message,
                "type": _ERROR_TYPES.get(code, "server_error" if code >= 500 else "invalid_request_error"),
                "param": None,
                "code": "rate_limit_exceeded" if code == 429 else None,
            }
        }
        self._send_json(code, error, headers)

    def _send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(code, json.dumps(obj).encode(), "application/json", headers)

    def _send_raw(self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _write_event(self, obj: dict[str, Any]) -> None:
        self._write_chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))


def _usage(prompt: str, content: str) -> dict[str, int]:
    prompt_tokens, completion_tokens = _count_tokens(prompt), _count_tokens(content)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class FakeOpenAIServer:
    """A scripted OpenAI-compatible server on ``127.0.0.1``, started on construction.

    Attributes:
        base_url: ``"http://127.0.0.1:PORT/v1"``, for ``OpenAI(base_url=...)``.
        requests: every request received, oldest first; each a dict with
            ``method``, ``path`` (as sent, including any query string),
            ``headers`` (names lower-cased) and ``json`` (the parsed body, or
            ``None`` if empty or not JSON).
        model: the model id listed by ``GET /v1/models`` and echoed when a
            chat request names none.

    Use it as a context manager (``with FakeOpenAIServer() as server:``) or
    call :meth:`close` yourself. It is thread-safe.
    """

    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._queue: deque[str | Fault] = deque()
        self._lock = threading.Lock()
        self._ids = 0
        self._unscripted = 0
        self._closed = False
        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so close() returns promptly
            name=f"FakeOpenAIServer:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- scripting ---------------------------------------------------------------
    def enqueue(self, *items: str | Fault) -> "FakeOpenAIServer":
        """Append replies (``str``) and/or :class:`Fault` items; each chat request consumes one."""
        for item in items:
            if not isinstance(item, (str, Fault)):
                raise TypeError(f"enqueue() takes reply strings or Fault items, not {type(item).__name__}")
        with self._lock:
            self._queue.extend(items)
        return self

    @property
    def pending(self) -> list[str | Fault]:
        """The scripted items not consumed yet, in order."""
        with self._lock:
            return list(self._queue)

    def assert_complete(self) -> None:
        """Raise ``AssertionError`` if scripted items remain, or if any chat
        request arrived with nothing scripted (it was answered with a 500 that
        a retrying client might otherwise have hidden)."""
        with self._lock:
            remaining, unscripted = list(self._queue), self._unscripted
        problems = []
        if remaining:
            problems.append(f"{len(remaining)} scripted item(s) never consumed: {remaining!r}")
        if unscripted:
            problems.append(f"{unscripted} chat request(s) arrived with {NO_SCRIPTED_REPLY}")
        if problems:
            raise AssertionError("FakeOpenAIServer: " + "; ".join(problems))

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Stop serving, wake delayed handlers and drop open connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._server.stopping.set()
        self._server.shutdown()
        with self._server.connections_lock:
            connections = list(self._server.connections)
        for conn in connections:  # idle keep-alive handlers would otherwise wait for `timeout`
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOpenAIServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FakeOpenAIServer({self.base_url!r}, pending={len(self._queue)}, requests={len(self.requests)})"

    # -- used by the handler -----------------------------------------------------
    def _record(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_item(self) -> str | Fault | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            self._unscripted += 1
            return None

    def _new_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"chatcmpl-fake{self._ids:04d}"
