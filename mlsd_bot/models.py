"""The one narrow interface to chat models, with its adapters.

`ChatModel.stream(messages)` yields text pieces of one assistant reply. The adapter
is `OpenAIChatModel`: LangChain's ChatOpenAI, for OpenAI or any OpenAI-compatible
server (Ollama, vLLM, llama.cpp) via OPENAI_BASE_URL. (The tests' fake,
`ScriptedModel`, lives in tests/support/scripted_model.py.)
Every provider failure becomes a `ModelError` whose message holds no secret.
"""

from __future__ import annotations

from typing import Iterator, Literal, Protocol

from pydantic import BaseModel

from .config import Settings
from .contract import SIGNALS
from .errors import ModelError

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

    # Local servers (Ollama, llama.cpp) need no key, but the client insists on one.
    return ChatOpenAI(model=settings.model, api_key=settings.api_key or "not-needed", base_url=settings.base_url,
                      timeout=settings.llm_timeout, max_retries=settings.llm_retries, **options)


class OpenAIChatModel:
    def __init__(self, settings: Settings):
        self.name = settings.model
        self._llm = _chat_openai(settings, streaming=True, temperature=0.4)

    def stream(self, messages: list[Message]) -> Iterator[str]:
        try:
            for chunk in self._llm.stream([(m["role"], m["content"]) for m in messages]):
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content
        except Exception as e:  # openai.APIError, httpx errors, and ValueError from a malformed body
            raise ModelError(f"the LLM request failed ({type(e).__name__})") from None


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
