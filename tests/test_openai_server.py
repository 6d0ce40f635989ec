"""Tests for tests/support/openai_server.py, driven by the real openai client over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import openai
import pytest

from support.openai_server import NO_SCRIPTED_REPLY, FakeOpenAIServer, Fault

MESSAGES = [
    {"role": "system", "content": "You are a mock interviewer."},
    {"role": "user", "content": "Design a feed ranking system."},
]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def make_client(server: FakeOpenAIServer, **kwargs) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(api_key="test-key", base_url=server.base_url, **kwargs)


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    with make_client(server) as c:
        yield c


def test_base_url_is_local_v1(server: FakeOpenAIServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.port > 0


def test_non_streaming_reply(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue("Let's start with the requirements.")
    completion = client.chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.id
    assert completion.model == "gpt-test"  # echoed from the request
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Let's start with the requirements."
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    server.assert_complete()


def test_streaming_reply_is_reassembled(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    text = "First, clarify the scale:  how many daily active users?"
    server.enqueue(text)
    chunks = list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))

    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-test" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) >= 5  # split into several small deltas, not one blob
    assert "".join(deltas) == text  # whitespace preserved exactly
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)  # usage was not requested
    server.assert_complete()


def test_streaming_usage_chunk_when_requested(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue("one two three")
    chunks = list(
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.completion_tokens == 3
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_status_500_raises_internal_server_error(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue(Fault.status(500, "the model fell over"))
    with pytest.raises(openai.InternalServerError) as excinfo:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert excinfo.value.status_code == 500
    assert "the model fell over" in excinfo.value.message
    server.assert_complete()


def test_status_429_raises_rate_limit_error(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue(Fault.status(429, "slow down"))
    with pytest.raises(openai.RateLimitError) as excinfo:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert excinfo.value.status_code == 429
    assert excinfo.value.response.headers["retry-after"] == "0"


def test_status_429_then_reply_succeeds_with_one_retry(server: FakeOpenAIServer) -> None:
    server.enqueue(Fault.status(429, "slow down"), "Recovered after a retry.")
    with make_client(server, max_retries=1) as retrying:
        completion = retrying.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert completion.choices[0].message.content == "Recovered after a retry."
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"] * 2
    server.assert_complete()


def test_delay_triggers_client_timeout(server: FakeOpenAIServer) -> None:
    server.enqueue(Fault.delay(5, then="too late"))
    with make_client(server, timeout=0.5) as impatient:
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(model="gpt-test", messages=MESSAGES)


def test_delay_does_not_block_other_requests(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue(Fault.delay(3.0, then="slow reply"), "fast reply")
    results: dict[str, str | None] = {}

    def slow_call() -> None:
        results["slow"] = client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content

    worker = threading.Thread(target=slow_call)
    worker.start()
    deadline = time.monotonic() + 2
    while not server.requests and time.monotonic() < deadline:  # the delayed request took the first item
        time.sleep(0.01)

    fast = client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
    assert fast == "fast reply"
    assert "slow" not in results  # answered while the delayed request was still waiting: not serialised
    worker.join(timeout=10)
    assert results["slow"] == "slow reply"
    server.assert_complete()


def test_malformed_body_raises_json_decode_error(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    # Finding: openai 3.57 does not wrap an unparsable 200 body in an openai
    # exception; json.JSONDecodeError (a ValueError) reaches the caller.
    server.enqueue(Fault.malformed())
    with pytest.raises(json.JSONDecodeError) as excinfo:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert not isinstance(excinfo.value, openai.OpenAIError)


def test_malformed_stream_event_raises_json_decode_error(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue(Fault.malformed())
    with pytest.raises(json.JSONDecodeError):
        list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))


def test_cut_stream_raises_connection_error(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue(Fault.cut_stream(after_words=2, reply="alpha beta gamma delta"))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "alpha beta "
    server.assert_complete()


def test_request_body_and_headers_are_recorded(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue("ok")
    client.chat.completions.create(model="gpt-test", messages=MESSAGES, temperature=0.2)

    (request,) = server.requests
    assert request["method"] == "POST"
    assert request["path"] == "/v1/chat/completions"
    assert request["json"]["model"] == "gpt-test"
    assert request["json"]["messages"] == MESSAGES
    assert request["json"]["temperature"] == 0.2
    assert request["headers"]["authorization"] == "Bearer test-key"
    assert request["headers"]["content-type"] == "application/json"


def test_models_endpoint_lists_one_model(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == ["fake-model"]
    assert server.requests[0]["method"] == "GET" and server.requests[0]["json"] is None


def test_unscripted_request_gets_500(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match=NO_SCRIPTED_REPLY):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert len(server.requests) == 1  # recorded all the same
    with pytest.raises(AssertionError, match=NO_SCRIPTED_REPLY):
        server.assert_complete()


def test_assert_complete_detects_leftovers(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue("used", "left over", Fault.status(500, "never sent"))
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    with pytest.raises(AssertionError, match="2 scripted item"):
        server.assert_complete()
    assert server.pending[0] == "left over"


def test_enqueue_rejects_other_types(server: FakeOpenAIServer) -> None:
    with pytest.raises(TypeError):
        server.enqueue({"content": "not a reply"})  # type: ignore[arg-type]


def test_close_is_quick_and_idempotent() -> None:
    srv = FakeOpenAIServer()
    srv.enqueue(Fault.delay(30))  # a handler stuck in a long delay must not hold up close()
    errors: list[BaseException] = []

    def call() -> None:
        with make_client(srv, timeout=5) as client:
            try:
                client.chat.completions.create(model="m", messages=MESSAGES)
            except BaseException as exc:  # noqa: BLE001 - inspected below
                errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 2
    while not srv.requests and time.monotonic() < deadline:
        time.sleep(0.01)

    started = time.monotonic()
    srv.close()
    srv.close()
    assert time.monotonic() - started < 1
    worker.join(timeout=3)
    assert not worker.is_alive()
    # The delayed request is dropped unanswered: the client sees a connection error.
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)


def test_langchain_chat_openai_invoke_and_stream(server: FakeOpenAIServer) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-test", api_key="test-key", base_url=server.base_url, max_retries=0, timeout=5)
    server.enqueue("Invoked through LangChain.", "Streamed through LangChain too.")

    message = llm.invoke("Hello?")
    assert message.content == "Invoked through LangChain."

    pieces = [chunk.content for chunk in llm.stream("Hello again?")]
    assert len([p for p in pieces if p]) >= 4
    assert "".join(pieces) == "Streamed through LangChain too."

    assert [r["json"]["stream"] for r in server.requests] == [False, True]
    assert server.requests[0]["json"]["messages"] == [{"role": "user", "content": "Hello?"}]
    assert all(r["headers"]["authorization"] == "Bearer test-key" for r in server.requests)
    server.assert_complete()
