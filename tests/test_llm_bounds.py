"""Bounded LLM replies: a cap on tokens and a deadline for the whole reply; past either, the turn falls back.

Through the real stack (Settings -> OpenAIChatModel -> LangChain -> HTTP -> FakeOpenAIServer),
a 2 MB reply and a reply trickling word by word are both cut short: what is stored is
at most the cap's worth of the reply, then the fallback notice and the offline draft.
No assertion on elapsed time: the bounds are checked on what was consumed and stored.
"""

from __future__ import annotations

import dataclasses

import pytest
from support.openai_server import FakeOpenAIServer, Fault

from mlsd_bot.config import load_settings
from mlsd_bot.errors import ConfigError, ModelError
from mlsd_bot.interview import Interview, llm_voice
from mlsd_bot.models import MAX_CHARS_PER_TOKEN, OpenAIChatModel
from mlsd_bot.sessions import SessionStore
from mlsd_bot.state import InterviewState

KEY = "sk-test-BOUNDS"


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def bounded_interview(real_index_settings, deps, server, store, **limits):
    settings = dataclasses.replace(real_index_settings, voice="openai", base_url=server.base_url, api_key=KEY,
                                   model="gpt-test", llm_timeout=5.0, llm_retries=0, **limits)
    model = OpenAIChatModel(settings)
    now = deps.clock()
    state = InterviewState(case_id="news_feed", session_id="bounded00001", started_at=now, phase_started_at=now)
    iv = Interview(state, deps.with_voice(llm_voice(model, deps)), on_change=store.save)
    server.enqueue("Welcome - what would you like to clarify first?")
    list(iv.open())
    return iv


def stored_reply(store: SessionStore) -> str:
    return store.load("bounded00001").turns[-1].text


@pytest.mark.parametrize("reply", [
    "word " * 420_000,  # 2.1 MB in 420,000 small chunks
    "x" * 2_000_000,  # 2 MB in one chunk
])
def test_a_2mb_reply_is_cut_at_the_cap_and_the_turn_falls_back(real_index_settings, deps, server, tmp_path, reply):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    iv = bounded_interview(real_index_settings, deps, server, store, llm_max_tokens=60)
    server.enqueue(reply)
    pieces = list(iv.send("About 300 million daily active users, and the feed must load within 200 ms."))

    notice = deps.prompts.say("fallback_notice", "bounded00001")
    text = stored_reply(store)
    assert notice in text and iv.last_turn.notice == "the LLM reply ran past 60 tokens"
    assert len(pieces) - 1 <= 60  # LLM chunks passed on before the fallback piece: at most the cap
    llm_part = text[: text.index(notice)]
    assert len(llm_part) <= 60 * MAX_CHARS_PER_TOKEN
    assert len(text) < 60 * MAX_CHARS_PER_TOKEN + 2000  # not 2 MB: the cap, the notice and the draft
    assert server.requests[-1]["json"]["max_completion_tokens"] == 60  # the cap is also asked for

    server.enqueue("Thanks. Where do the labels come from?")
    list(iv.send("Clicks and dwell time give the labels."))  # the next turn is normal again
    assert stored_reply(store) == "Thanks. Where do the labels come from?" and iv.last_turn.notice is None


def test_a_trickling_reply_is_cut_at_the_deadline_and_the_turn_falls_back(real_index_settings, deps, server,
                                                                            tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    iv = bounded_interview(real_index_settings, deps, server, store, llm_deadline=0.5)
    words = [f"w{i}" for i in range(60)]
    server.enqueue(Fault.trickle(0.1, " ".join(words)))  # 6 s in all, each read well within the timeout
    pieces = list(iv.send("About 300 million daily active users."))

    text = stored_reply(store)
    assert deps.prompts.say("fallback_notice", "bounded00001") in text
    assert iv.last_turn.notice == "the LLM reply took longer than 0.5 s"
    said = [w for w in words if w in text.split()]
    assert said == words[: len(said)] and len(said) < len(words)  # a prefix of the reply, then the fallback
    assert len(pieces) - 1 == len(said)


# --- the bound itself, on a clock the test moves -------------------------------------------------------

class StepClock:
    """Advances one second at every reading."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_the_stream_is_cut_after_deadline_seconds_whatever_the_chunk_sizes(real_index_settings):
    settings = dataclasses.replace(real_index_settings, base_url="http://127.0.0.1:9/v1", llm_deadline=10.0)
    model = OpenAIChatModel(settings, clock=StepClock())
    passed = []
    with pytest.raises(ModelError, match="longer than 10 s"):
        for piece in model._bounded(iter(["a "] * 100)):
            passed.append(piece)
    assert len(passed) == 10  # chunk k arrives k seconds after the start: the 11th is past the 10 s


def test_the_token_cap_counts_tokens_not_chunks(real_index_settings):
    settings = dataclasses.replace(real_index_settings, base_url="http://127.0.0.1:9/v1", llm_max_tokens=10)
    model = OpenAIChatModel(settings)
    assert list(model._bounded(iter(["one two three four five", " six seven eight nine ten"]))) == [
        "one two three four five", " six seven eight nine ten"]  # exactly 10 tokens: allowed
    with pytest.raises(ModelError, match="past 10 tokens"):
        list(model._bounded(iter(["one two three four five", " six seven eight nine ten eleven"])))
    assert list(model._bounded(iter(["lone \ud800 surrogate"]))) == ["lone \ufffd surrogate"]  # cleaned too


@pytest.mark.parametrize("name,value", [("MLSD_LLM_MAX_TOKENS", "0"), ("MLSD_LLM_MAX_TOKENS", "many"),
                                        ("MLSD_LLM_DEADLINE", "-1"), ("MLSD_LLM_DEADLINE", "nan"),
                                        ("MLSD_LLM_DEADLINE", "inf"), ("MLSD_LLM_DEADLINE", "soon")])
def test_bad_bounds_are_config_errors(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_bounds_defaults_and_overrides():
    default = load_settings({})
    assert (default.llm_max_tokens, default.llm_deadline) == (400, 20.0)
    custom = load_settings({"MLSD_LLM_MAX_TOKENS": "150", "MLSD_LLM_DEADLINE": "7.5"})
    assert (custom.llm_max_tokens, custom.llm_deadline) == (150, 7.5)
