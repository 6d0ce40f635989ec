"""The browser UI's renderers (mlsd_bot/web/views.py): plain functions, no browser, no gradio."""

from __future__ import annotations

import html
import re

from mlsd_bot.contract import SIGNAL_PHASE
from mlsd_bot.knowledge import Chunk
from mlsd_bot.sessions import SessionSummary
from mlsd_bot.state import Evidence, InterviewState, Turn
from mlsd_bot.web import views

LABELS = {s: s.replace("_", " ").title() for s in SIGNAL_PHASE}
CHUNK = Chunk(id="case_studies/toy.md#0", source="case_studies/toy.md", case="toy", phase="clarify",
              heading="Clarify", text="Ask about **scale** first.\n\nThen latency.", digest="d")


def state_with(*turns: Turn, **kw) -> InterviewState:
    return InterviewState(case_id="toy", turns=list(turns), **kw)


def test_candidate_text_keeps_no_markup():
    text = "<img src=x onerror=alert(1)> **bold** [link](http://x) `code` # title"
    escaped = views.escape_text(text)
    assert not re.search(r"[<>*\[\]`#]", escaped.replace("&#", ""))  # only entities are left
    assert html.unescape(escaped) == text  # and they read back as exactly what was typed


def test_chat_escapes_candidates_and_adds_sources_after_streaming():
    state = state_with(Turn(n=1, role="interviewer", phase="clarify", text="Hi <b>there</b>"),
                       Turn(n=2, role="candidate", phase="clarify", text="<script>x</script>"),
                       Turn(n=3, role="interviewer", phase="clarify", text="Why?", citations=["case_studies/toy.md#clarify"]))
    cited = views.cited_chunks([CHUNK])
    final = views.chat_messages(state, cited)
    assert [m["role"] for m in final] == ["assistant", "user", "assistant"]
    assert "<" not in final[0]["content"] and "<" not in final[1]["content"]
    assert "<details" in final[2]["content"] and "Ask about scale first. Then latency." in final[2]["content"]
    live = views.chat_messages(state, cited, live=(3, "Wh"))
    assert live[2]["content"] == "Wh"  # no sources until the reply is complete
    assert views.chat_messages(state, cited, live=(3, ""))[2]["content"] == "..."


def test_sources_block_has_no_blank_line():
    block = views.sources_html(["case_studies/toy.md#clarify", "missing.md#x"], views.cited_chunks([CHUNK]))
    assert "\n" not in block and "(section not in the index)" in block


def test_tracker_marks_the_current_phase_and_covered_signals():
    ev = Evidence(signal="scale", said_in="clarify", quote="q", turn=1)
    out = views.tracker_html(state_with(phase="data", covered={"scale": ev}), LABELS)
    assert re.findall(r'<li class="(\w+)" data-phase="(\w+)"', out)[:4] == [
        ("done", "clarify"), ("done", "framing"), ("current", "data"), ("todo", "model")]
    assert out.count('aria-current="step"') == 1 and "&#10003; Scale" in out


def test_clock():
    assert views.clock_text(125.9, False) == "**2 min** left"
    assert views.clock_text(59, False) == "**under a minute** left"
    assert "Time is up" in views.clock_text(0, False)
    assert "finished" in views.clock_text(99, True)


def test_progress_plots_only_finished_interviews():
    def summary(i, finished):
        return SessionSummary(id=f"s{i}", case_id="toy", level="senior", started=1.7e9 + i * 86400, updated=0,
                              finished=finished, phase="monitoring", score=50,
                              phase_scores={"clarify": i % 5, "model": 2} if finished else {})

    assert "No finished interview" in views.progress_svg([summary(0, False)])
    svg = views.progress_svg([summary(i, i != 1) for i in range(3)])
    assert svg.startswith("<svg") and svg.count("<polyline") == 7 and svg.count("<circle") == 4  # 2 runs x 2 phases
    rows = views.history_rows([summary(1, False)], {"toy": "Toy"})
    assert rows[0][1:5] == ["Toy", "senior", "unfinished (monitoring)", 50]


def test_resume_speaks_with_the_voice_the_candidate_picked(deps, tmp_path):
    """An interview started with the LLM voice resumes with it; an offline one stays offline."""
    from mlsd_bot.interview import llm_voice
    from support.scripted_model import ScriptedModel
    from mlsd_bot.sessions import SessionStore
    from mlsd_bot.voice import LLMVoice, OfflineVoice
    from mlsd_bot.web.control import Control

    model = ScriptedModel("Welcome - what would you clarify first?")
    control = Control(deps.with_voice(llm_voice(model, deps)), SessionStore(tmp_path / "s.sqlite3"), tmp_path)
    picked = {}
    for voice in ("offline", "llm"):
        iv = control.start("news_feed", "senior", 45, voice)
        list(iv.open())
        picked[voice] = control.store.load(iv.state.session_id)
    model.assert_complete()  # only the LLM interview called the model
    assert isinstance(control.resume(picked["llm"]).deps.voice, LLMVoice)
    assert isinstance(control.resume(picked["offline"]).deps.voice, OfflineVoice)
