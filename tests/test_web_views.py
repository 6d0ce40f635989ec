"""The browser UI's renderers and rules (mlsd_bot/web/views.py, control.py, the report's
rendering helpers): plain functions, no browser, no gradio."""

from __future__ import annotations

import html
import re

import pytest

from mlsd_bot.contract import SIGNAL_PHASE
from mlsd_bot.interview import MAX_MESSAGE_CHARS
from mlsd_bot.knowledge import Chunk
from mlsd_bot.report import bar_chart_svg, source_label, to_html, to_markdown, transcript_markdown
from mlsd_bot.sessions import SessionSummary
from mlsd_bot.state import Evidence, InterviewState, Turn
from mlsd_bot.web import views
from mlsd_bot.web.control import message_problem

LABELS = {s: s.replace("_", " ").title() for s in SIGNAL_PHASE}
SECTION = ("Toy feed › Clarify\nAsk about **scale** first: how many members open the feed each day.\n"
           "- Then the latency budget for the ranking call, p99 under 150 ms.\n### Notes\nShort.")
CASE_CHUNK = Chunk(id="case_studies/toy.md#0", source="case_studies/toy.md", case="toy", phase="clarify",
                   heading="Clarify", text=SECTION, digest="d")
FACTS_CHUNK = Chunk(id="case_studies/toy.md#1", source="case_studies/toy.md", case="toy", phase="clarify",
                    heading="Facts", text="Toy feed › Facts\n- scale: about 20 million members open the feed daily.",
                    digest="d")
FRAMEWORK_CHUNK = Chunk(id="framework/data.md#0", source="framework/data.md", case=None, phase="data",
                        heading="Negative sampling",
                        text="Data preparation › Negative sampling\nRandom negatives are easy; hard negatives "
                             "mined from the same query teach the ranker far more per example.", digest="d")
CITED = views.cited_chunks([CASE_CHUNK, FACTS_CHUNK, FRAMEWORK_CHUNK])


def state_with(*turns: Turn, **kw) -> InterviewState:
    return InterviewState(case_id="toy", turns=list(turns), **kw)


def test_candidate_text_keeps_no_markup():
    text = "<img src=x onerror=alert(1)> **bold** [link](http://x) `code` # title"
    escaped = views.escape_text(text)
    assert not re.search(r"[<>*\[\]`#]", escaped.replace("&#", ""))  # only entities are left
    assert html.unescape(escaped) == text  # and they read back as exactly what was typed


def test_chat_escapes_candidates_and_adds_sources_after_streaming():
    cite = "framework/data.md#negative-sampling"
    state = state_with(Turn(n=1, role="interviewer", phase="clarify", text="Hi <b>there</b>"),
                       Turn(n=2, role="candidate", phase="clarify", text="<script>x</script>"),
                       Turn(n=3, role="interviewer", phase="clarify", text="Why random negatives?", citations=[cite]))
    final = views.chat_messages(state, CITED)
    assert [m["role"] for m in final] == ["assistant", "user", "assistant"]
    assert "<" not in final[0]["content"] and "<" not in final[1]["content"]
    assert "<details" in final[2]["content"] and "hard negatives mined" in final[2]["content"]
    live = views.chat_messages(state, CITED, live=(3, "Wh"))
    assert live[2]["content"] == "Wh"  # no sources until the reply is complete
    # No words yet: the turn is left out, so the chat shows its typing indicator instead.
    assert [m["role"] for m in views.chat_messages(state, CITED, live=(3, ""))] == ["assistant", "user"]
    pending = views.chat_messages(state, CITED, pending="<b>next</b>")
    assert pending[-1] == {"role": "user", "content": views.escape_text("<b>next</b>")}


def test_a_source_is_a_titled_excerpt_never_a_path_or_a_wall_of_text():
    block = views.sources_html(["framework/data.md#negative-sampling"], CITED, "why not hard negatives?",
                               finished=False)
    assert '<span class="src">Data preparation › Negative sampling</span>' in block
    assert "framework/data.md" not in block
    assert "\n" not in block  # inside Markdown a blank line would end the HTML block
    text = views.excerpt(CITED["case_studies/toy.md#clarify"], "what is the latency budget?")
    assert text == "Then the latency budget for the ranking call, p99 under 150 ms."  # the closest sentence
    assert len(views.excerpt([CASE_CHUNK], "scale " * 3, limit=40)) <= 40


def test_mid_interview_a_case_section_is_withheld_but_its_facts_are_shown():
    """The case's own notes are its worked answers; facts are what the interviewer just said."""
    about = "How many members open the feed?"
    during = views.sources_html(["case_studies/toy.md#clarify", "case_studies/toy.md#facts"], CITED, about,
                                finished=False)
    assert "Ask about" not in during and "latency budget" not in during and "shown with your report" in during
    assert "about 20 million members open the feed daily." in during and "scale:" not in during  # no bullet key
    assert "<span class=\"src\">Toy feed › Clarify</span>" in during
    after = views.sources_html(["case_studies/toy.md#clarify"], CITED, about, finished=True)
    assert "how many members open the feed each day" in after
    # What the interviewer just said (a pushback quoting the section) may be shown as its source.
    said = "Then the latency budget for the ranking call, p99 under 150 ms: what would yours be?"
    quoted = views.sources_html(["case_studies/toy.md#clarify"], CITED, said, finished=False)
    assert "p99 under 150 ms." in quoted and "how many members" not in quoted


def test_tracker_and_status_bar_show_labels_and_the_current_step():
    ev = Evidence(signal="scale", said_in="clarify", quote="q", turn=1)
    state = state_with(phase="data", covered={"scale": ev, "sampling": ev})
    out = views.tracker_html(state, LABELS)
    assert re.findall(r'<li class="(\w+)" data-phase="(\w+)"', out)[:4] == [
        ("done", "clarify"), ("done", "framing"), ("current", "data"), ("todo", "model")]
    assert out.count('aria-current="step"') == 1 and "&#10003; Scale" in out
    bar = views.status_html(state, "Toy feed", 125.0)
    assert "<b>3/7</b> Data preparation" in bar and "1/4 topics" in bar and "2 min left" in bar


def test_clock():
    assert views.clock_text(125.9, False) == "2 min left"
    assert views.clock_text(59, False) == "under a minute left"
    assert "Time is up" in views.clock_text(0, False)
    assert "finished" in views.clock_text(99, True)


@pytest.mark.parametrize("text, kind", [
    ("", "empty"), ("   \n ", "empty"), ("x" * (MAX_MESSAGE_CHARS + 1), "too_long"),
    ("/foo", "unknown_command"), ("/Foo bar", "unknown_command"),
])
def test_messages_that_are_not_sent(text, kind):
    problem = message_problem(text)
    assert problem is not None and problem[0] == kind
    if kind == "unknown_command":
        assert all(c in problem[1] for c in ("/hint", "/next", "/end"))  # answered with the commands
    if kind == "too_long":
        assert f"{MAX_MESSAGE_CHARS + 1:,}" in problem[1] and f"{MAX_MESSAGE_CHARS:,}" in problem[1]


@pytest.mark.parametrize("text", ["/hint", "/NEXT", "/end now", "x" * MAX_MESSAGE_CHARS,
                                  "/usr/bin/python runs the trainer", "/ 2 of the traffic goes to the test"])
def test_messages_that_are_sent(text):
    assert message_problem(text) is None


def summary(i: int, case: str = "toy", score: int | None = 50, finished: bool = True) -> SessionSummary:
    return SessionSummary(id=f"s{i}", case_id=case, level="senior", started=1.7e9 + i * 86400,
                          updated=1.7e9 + i * 86400 + 600, finished=finished, phase="monitoring", score=score,
                          phase_scores={})


def test_history_rows_open_reports_or_resume():
    out = views.history_html([summary(2, finished=False, score=None), summary(1, score=72)], {"toy": "Toy feed"})
    assert re.findall(r'data-session="(\w+)"', out) == ["s2", "s1"]  # the store's order: most recent first
    assert "Resume" in out and "unfinished, at Monitoring, drift and retraining" in out
    assert "72/100 &middot; Hire" in out and "Open report" in out
    assert views._date(1.7e9 + 2 * 86400 + 600) in out  # the date shown is the last activity
    assert "No interviews yet" in views.history_html([], {})


def test_progress_is_the_overall_score_per_case():
    assert "No finished interview" in views.progress_html([summary(0, finished=False)], {})
    runs = [summary(0, "a", 30), summary(1, "a", 55), summary(2, "b", 80), summary(3, "a", 70, finished=False)]
    out = views.progress_html(runs, {"a": "Case A", "b": "Case B"})
    assert out.index("Case B") < out.index("Case A")  # the most recently practised case first
    assert out.count("<svg") == 2 and out.count("<circle") == 3  # unfinished runs are not plotted
    assert "latest 55/100, +25 since the first" in out and "<b>3</b> finished interviews" in out
    assert "latest <b>80/100</b> (Hire)" in out and "best <b>80/100</b>" in out
    assert 'viewBox="0 0 ' in out and 'width="100%"' in out and 'fill="currentColor"' in out


# --- the report's rendering ---------------------------------------------------------

def test_charts_scale_and_use_the_theme_text_colour(deps, clock):
    from mlsd_bot.interview import Interview

    iv = Interview.new(deps, "news_feed")
    list(iv.open())
    list(iv.send("We expect 300M daily active users; p99 under 200 ms."))
    svg = bar_chart_svg(iv.report())
    assert re.search(r'viewBox="0 0 \d+ \d+" width="100%"', svg)
    texts = re.findall(r"<text [^>]*>", svg)
    assert len(texts) == 14 and all('fill="currentColor"' in t for t in texts)


def test_downloads_hold_labels_the_transcript_and_a_viewport(deps, clock):
    from mlsd_bot.interview import Interview

    iv = Interview.new(deps, "news_feed")
    list(iv.open())
    list(iv.send("We expect 300M daily active users <b>opening</b> the feed; p99 under 200 ms."))
    list(iv.send("/end"))
    report, turns = iv.report(), iv.state.turns
    md, page = to_markdown(report, turns), to_html(report, turns)
    assert "| Clarifying requirements |" in md and "Scale" in md and "business_objective" not in md
    assert md.endswith(transcript_markdown(turns)) and "## Transcript" in md
    assert md.count("**You**") == 2 and md.count("**Interviewer**") == 3
    assert "&lt;b&gt;opening&lt;/b&gt;" in md and "&lt;b&gt;opening&lt;/b&gt;" in page
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page
    assert "prefers-color-scheme:dark" in page and 'class="mlsd-transcript"' in page
    assert to_markdown(report) + "\n" + transcript_markdown(turns) == md  # the report part is unchanged


def test_what_held_the_score_down_is_shown_with_it(deps, clock):
    from mlsd_bot.interview import Interview

    iv = Interview.new(deps, "news_feed", level="senior")
    list(iv.open())
    list(iv.send("We expect 300M daily active users; p99 under 200 ms."))
    list(iv.send("/end"))
    report, labels = iv.report(), {s: s.replace("_", " ") for s in SIGNAL_PHASE}
    assert not report.limits and 'class="limits"' not in views.report_head_html(report, labels)
    held = report.model_copy(update={"limits": ["Held at 39: <no> reason given."]})
    for page in (views.report_head_html(held, labels), to_html(held), to_markdown(held)):
        assert "Held at 39: &lt;no&gt; reason given." in page and "<no>" not in page


def test_source_labels_are_words():
    assert source_label("framework/evaluation.md#offline-metrics") == \
        "Evaluation, offline and online (framework) › Offline metrics"
    assert source_label("case_studies/news_feed.md#data") == "News feed › Data preparation"


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
        iv = control.start("news_feed", "senior", 45, voice, "me")
        list(iv.open())
        picked[voice] = control.store.load(iv.state.session_id)
    model.assert_complete()  # only the LLM interview called the model
    assert isinstance(control.resume(picked["llm"], "me").deps.voice, LLMVoice)
    assert isinstance(control.resume(picked["offline"], "me").deps.voice, OfflineVoice)


def test_a_finished_interview_reopens_with_its_transcript(deps, tmp_path):
    from mlsd_bot.sessions import SessionStore
    from mlsd_bot.web.control import Control

    control = Control(deps, SessionStore(tmp_path / "s.sqlite3"), tmp_path)
    iv = control.start("news_feed", "mid", 30, "offline", "me")
    list(iv.open())
    assert control.reopen(control.lookup(iv.state.session_id, "me"), "me") is None  # not finished: nothing to reopen
    list(iv.send("/end"))
    done = control.finish(iv, "me")
    again = control.reopen(control.lookup(iv.state.session_id, "me"), "me")
    assert again.report == done.report and again.state.turns == iv.state.turns
    assert again.markdown_path.read_text() == done.markdown_path.read_text()
    assert "## Transcript" in again.markdown_path.read_text() and "mlsd-transcript" in again.html_path.read_text()
    assert control.lookup("nope", "me") is None and control.resumable(iv.state.session_id, "me") is None
    assert control.lookup(iv.state.session_id, "someone-else") is None  # another owner's id: not found
    assert [s.id for s in control.history("me")] == [iv.state.session_id] and control.history("someone-else") == []
