"""The one narrow interface to chat models, with its adapters.

`ChatModel.stream(messages)` yields text pieces of one assistant reply. The adapter
is `OpenAIChatModel`: LangChain's ChatOpenAI, for OpenAI or any OpenAI-compatible
server (Ollama, vLLM, llama.cpp) via OPENAI_BASE_URL. (The tests' fake,
`ScriptedModel`, lives in tests/support/scripted_model.py.)
Every provider failure becomes a `ModelError` whose message holds no secret.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Literal, Protocol

from pydantic import BaseModel

from . import tokens
from .config import Settings
from .contract import SIGNALS
from .errors import ModelError
from .textsafe import clean

MAX_CHARS_PER_TOKEN = 8  # English averages ~4; a reply longer than cap x 8 characters is over the cap anyway
Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
SignalId = Literal[SIGNALS]  # type: ignore[valid-type]  # the 25 contract ids, nothing else


class SignalJudgment(BaseModel):
    """What the LLM judge may answer: a list of contract signal ids."""
    signals: list[SignalId]


class ChatModel(Protocol):
    name: str

    def stream(self, messages: list[Message]) -> Iterator[str]: ...


def _chat_openai(settings: Settings, **options):
    """LangChain's ChatOpenAI for the configured server, model, timeout and retries."""
    from langchain_openai import ChatOpenAI

    options.setdefault("timeout", settings.llm_timeout)
    # Local servers (Ollama, llama.cpp) need no key, but the client insists on one.
    return ChatOpenAI(model=settings.model, api_key=settings.api_key or "not-needed", base_url=settings.base_url,
                      max_retries=settings.llm_retries, **options)


class OpenAIChatModel:
    """Streams one reply, bounded: at most `llm_max_tokens` tokens and `llm_deadline` seconds.

    The cap is sent as max_tokens and also counted on the stream (a server may ignore it);
    the deadline covers the whole reply, which per-read timeouts do not (a reply trickling
    a word a second never times out). Past either, ModelError: the voice falls back.
    A chunk arriving after the deadline is dropped; a read that blocks is ended by the
    per-read timeout, which is therefore kept no longer than the deadline.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.name = settings.model
        self.max_tokens, self.deadline, self._clock = settings.llm_max_tokens, settings.llm_deadline, clock
        self._llm = _chat_openai(settings, streaming=True, temperature=0.4, max_tokens=self.max_tokens,
                                 timeout=min(settings.llm_timeout, settings.llm_deadline))

    def stream(self, messages: list[Message]) -> Iterator[str]:
        chunks = self._llm.stream([(m["role"], m["content"]) for m in messages])
        try:
            yield from self._bounded(c.content for c in chunks if isinstance(c.content, str) and c.content)
        except ModelError:
            raise
        except Exception as e:  # openai.APIError, httpx errors, and ValueError from a malformed body
            raise ModelError(f"the LLM request failed ({type(e).__name__})") from None
        finally:
            chunks.close()  # stop reading: closes the HTTP response of a reply cut short

    def _bounded(self, texts: Iterator[str]) -> Iterator[str]:
        start, tokens_left, chars_left = self._clock(), self.max_tokens, self.max_tokens * MAX_CHARS_PER_TOKEN
        for text in texts:
            if self._clock() - start > self.deadline:
                raise ModelError(f"the LLM reply took longer than {self.deadline:g} s")
            chars_left -= len(text)  # checked first: a huge chunk is over the cap without tokenising it
            tokens_left -= tokens.count(text) if chars_left >= 0 else 0
            if chars_left < 0 or tokens_left < 0:
                raise ModelError(f"the LLM reply ran past {self.max_tokens} tokens")
            yield clean(text)  # JSON can spell lone surrogates: the reply is stored and shown


class LLMSignalJudge:
    """`SignalJudge` over an OpenAI-compatible server, with JSON-schema structured output."""

    def __init__(self, settings: Settings, prompts, descriptions: dict[str, str]):
        llm = _chat_openai(settings, temperature=0)
        self._judge = llm.with_structured_output(SignalJudgment, method="json_schema")
        self._prompts, self._signals = prompts, list(descriptions.items())

    def judge(self, text: str, phase: str | None, suggested: list[str]) -> list[str]:
        prompt = self._prompts.llm("detect.j2", phase=phase or "any", signals=self._signals,
                                   suggested=suggested, message=text)
        try:
            return list(self._judge.invoke(prompt).signals)
        except Exception as e:  # network, status, timeout, or a reply that is not the schema
            raise ModelError(f"the LLM signal judge failed ({type(e).__name__})") from None
