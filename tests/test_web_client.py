"""The browser app's API: the same flows as the browser, through `gradio_client.Client`.

The real `python app.py` runs in a child process. Each `Client` is one browser
session (its own gr.State), so these tests also show that sessions do not mix.
The last tests run the app with an LLM voice against the scripted fake OpenAI
server, to see replies stream and the API key stay out of everything served.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from support.openai_server import FakeOpenAIServer, Fault
from support.web_server import AppServer, launch_app

from mlsd_bot.cases import load_cases
from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.report import to_html, to_markdown, transcript_html
from mlsd_bot.sessions import SessionStore

pytestmark = pytest.mark.browser

CASES = {c.id: c for c in load_cases(PROJECT_ROOT / "knowledge")}
SECRET = "sk-test-DO-NOT-LEAK-9f8e7d"
# Output positions of /send (a message or a command) and of /start and /resume.
CHAT, STATUS, TRACKER, HEAD, REPORT_MD, TRANSCRIPT, DL_MD, DL_HTML = range(8)
SID, O_CHAT, O_STATUS, O_TRACKER = range(4)


@pytest.fixture(autouse=True)
def _client_stays_offline(monkeypatch) -> None:
    """gradio_client calls huggingface.co twice on its own; both are turned off here.

    Its telemetry: gradio_client 2.7 reads `analytics_enabled or env == "True"`, so the
    flag alone cannot turn it off, the environment variable must say so too. And
    huggingface_hub fetches an "agent harnesses" registry to build its user-agent
    header unless it is in offline mode.
    """
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def new_client(app: AppServer, tmp_path: Path) -> Client:
    return Client(app.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))


def texts(chat: list[dict]) -> list[tuple[str, str]]:
    """(role, text) of each chat message: markup entities decoded, the sources block cut off."""
    out = []
    for m in chat:
        raw = "".join(part["text"] for part in m["content"] if part.get("type") == "text")
        out.append((m["role"], html.unescape(raw.split("\n\n<details", 1)[0])))
    return out


def phase_of(tracker_html: str) -> str:
    return re.search(r'data-phase="(\w+)" aria-current="step"', tracker_html).group(1)


def store(app: AppServer) -> SessionStore:
    return SessionStore(app.data_dir / "sessions.sqlite3")


# --- the offline interviewer ----------------------------------------------------------

def test_start_send_hint_next_end_report(app: AppServer, tmp_path: Path):
    client = new_client(app, tmp_path)
    out = client.predict("video_recommendation", "senior", 45, "offline", api_name="/start")
    sid, chat = out[SID], texts(out[O_CHAT])
    assert chat == [("assistant", chat[0][1])] and CASES["video_recommendation"].problem[:60] in chat[0][1]
    assert phase_of(out[O_TRACKER]) == "clarify" and "min left" in out[O_STATUS]

    job = client.submit("The goal is watch time; 100M daily active users and p99 latency under 200 ms.",
                        api_name="/send")
    out = job.result()
    assert [r for r, _ in texts(out[CHAT])] == ["assistant", "user", "assistant"]
    assert "&#10003; Scale" in out[TRACKER] and "&#10003; Latency" in out[TRACKER]
    out = client.predict("Labels come from implicit feedback such as watches and skips.", api_name="/send")
    assert len(out[CHAT]) == 5

    out = client.predict("/hint", api_name="/send")
    hint = store(app).load(sid).turns[-1]  # saved before the reply was shown
    assert hint.action == "hint" and texts(out[CHAT])[-1] == ("assistant", hint.text)
    assert texts(out[CHAT])[-2] == ("user", "/hint")

    out = client.predict("/next", api_name="/send")
    assert phase_of(out[TRACKER]) == "framing" and store(app).load(sid).phase == "framing"
    assert "<b>2/7</b> Framing the problem" in out[STATUS]

    out = client.predict("/end", api_name="/send")
    report, turns = store(app).report(sid), store(app).load(sid).turns
    assert report is not None and "Interview finished" in out[STATUS]
    assert "<svg" in out[HEAD] and f"Overall: {report.overall.score}/100" in out[HEAD]
    assert out[REPORT_MD].strip() == to_markdown(report).strip()
    assert out[TRANSCRIPT] == transcript_html(turns) and "/hint" in out[TRANSCRIPT]
    assert Path(out[DL_MD]).read_text(encoding="utf-8") == to_markdown(report, turns)
    assert Path(out[DL_HTML]).read_text(encoding="utf-8") == to_html(report, turns)

    history, progress = client.predict(api_name="/history")
    assert f'data-session="{sid}"' in history and "<svg" in progress


def test_an_offline_reply_is_one_update_and_every_turn_is_saved_first(app: AppServer, tmp_path: Path):
    """The offline voice's reply is ready at once: one update carries it with the status (every extra
    update costs gradio a postprocess of each output). LLM replies stream: see the llm tests below."""
    client = new_client(app, tmp_path)
    sid = client.predict("news_feed", "mid", 30, "offline", api_name="/start")[SID]
    job = client.submit("We have about 300M daily active users opening the feed.", api_name="/send")
    job.result()
    chats = [texts(o[CHAT]) for o in job.outputs()]
    assert len(chats) == 1 and job.outputs()[0][STATUS], "the whole reply and the status in one update"
    saved = store(app).load(sid)
    assert [t.text for t in saved.turns] == [text for _, text in chats[-1]]
    assert saved.turns[-1].role == "interviewer" and not saved.finished


def test_sessions_are_separate_and_resumable_by_id(app: AppServer, tmp_path: Path):
    first, second = new_client(app, tmp_path / "a"), new_client(app, tmp_path / "b")
    sid, *_, key = first.predict("similar_listings", "staff", 60, "offline", api_name="/start")
    said = first.predict("We want more bookings; 50M monthly active users.", api_name="/send")[CHAT]
    other = second.predict("visual_search", "mid", 20, "offline", api_name="/start")
    assert other[SID] != sid and len(other[O_CHAT]) == 1  # the second session did not see the first one's chat

    # Another client resumes it with the first one's owner key (without login, ids are per key).
    resumed = new_client(app, tmp_path / "c").predict(sid, key, api_name="/resume")
    assert texts(resumed[O_CHAT]) == texts(said) and CASES["similar_listings"].title in resumed[O_STATUS]


def test_bad_requests_get_one_line_errors_and_log_lines(app: AppServer, tmp_path: Path):
    client = new_client(app, tmp_path)
    with pytest.raises(AppError, match="Start an interview first"):
        client.predict("hello", api_name="/send")
    sid = client.predict("news_feed", "senior", 45, "offline", api_name="/start")[SID]
    with pytest.raises(AppError, match="Type an answer first"):
        client.predict("   ", api_name="/send")
    with pytest.raises(AppError, match=r"/foo is not a command: use /hint, /next or /end"):
        client.predict("/foo", api_name="/send")
    assert len(store(app).load(sid).turns) == 1, "a rejected message must not reach the interview"
    with pytest.raises(AppError, match="finished or was not found"):
        client.predict("0000deadbeef", api_name="/resume")
    log = app.log()
    assert f"rejected a message (empty) in session {sid}\n" in log
    assert f"rejected a message (unknown_command) in session {sid}\n" in log
    assert "Traceback" not in log, "a rejected message or id is one log line, not a traceback"

    with pytest.raises(AppError, match="nope is not in the list of choices"):  # gradio checks the choices
        client.predict("nope", "senior", 45, "offline", api_name="/start")
    with pytest.raises(AppError, match=r"'llm'.* is not in the list of choices"):  # no LLM configured here
        client.predict("news_feed", "senior", 45, "llm", api_name="/start")


# --- an LLM voice (the scripted fake OpenAI server) -------------------------------------

@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def llm_app(llm, real_index_settings, tmp_path_factory, subprocess_env, _child_guard) -> Iterator[AppServer]:
    env = subprocess_env(MLSD_VOICE="openai", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY=SECRET,
                         MLSD_LLM_RETRIES="0")
    server = launch_app(real_index_settings.data_dir, tmp_path_factory.mktemp("web-llm"), env, _child_guard[1])
    yield server
    server.stop()


def test_llm_voice_streams_and_never_shows_the_key(llm, llm_app: AppServer, tmp_path: Path):
    client = new_client(llm_app, tmp_path)
    opening = "Welcome. Today we design a news feed: what would you like to know first?"
    llm.enqueue(opening)
    job = client.submit("news_feed", "senior", 45, "llm", api_name="/start")
    out = job.result()
    sid = out[SID]
    assert texts(out[O_CHAT]) == [("assistant", opening)]
    partial = [texts(o[O_CHAT])[-1][1] for o in job.outputs() if o[O_CHAT]]
    assert len(partial) > 3 and all(opening.startswith(p) for p in partial), "the reply should stream word by word"
    assert llm.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"  # the key goes to the LLM only

    llm.enqueue(Fault.status(500, "the model is down"))
    out = client.predict("We expect 300M daily active users.", api_name="/send")
    last = store(llm_app).load(sid).turns[-1]
    assert last.notice, "a failed LLM call should be noted on the turn"
    assert texts(out[CHAT])[-1] == ("assistant", last.text)  # the offline words, with the fallback notice

    llm.enqueue("Thanks, that is all for today.")
    out = client.predict("/end", api_name="/send")
    saved = [f.read_bytes().decode("latin-1") for f in llm_app.data_dir.glob("sessions.sqlite3*")]
    for served in (llm_app.get("/"), llm_app.get("/config"), llm_app.log(), Path(out[DL_MD]).read_text(),
                   Path(out[DL_HTML]).read_text(), *saved):
        assert SECRET not in served
    llm.assert_complete()


def test_an_llm_reply_to_a_message_streams_as_it_is_written(llm, llm_app: AppServer, tmp_path: Path):
    client = new_client(llm_app, tmp_path)
    llm.enqueue("Hello, let us begin.")
    client.predict("news_feed", "senior", 45, "llm", api_name="/start")
    answer = "Good, and where would the labels for that come from in your design?"
    llm.enqueue(Fault.trickle(0.15, answer))  # a model writing about seven words a second
    job = client.submit("We expect 300M daily active users.", api_name="/send")
    job.result()
    partial = [texts(o[CHAT])[-1][1] for o in job.outputs() if o[CHAT]]
    assert len(partial) >= 3 and all(answer.startswith(p) for p in partial[:-1]), partial
    assert partial[-1].startswith(answer)  # the last one carries the whole reply (and its sources)
    llm.assert_complete()


def test_a_slow_llm_reply_does_not_block_other_users(llm, llm_app: AppServer, tmp_path: Path):
    slow, fast = new_client(llm_app, tmp_path / "slow"), new_client(llm_app, tmp_path / "fast")
    llm.enqueue("Hello, let us begin.")
    slow.predict("news_feed", "senior", 45, "llm", api_name="/start")
    asked = len(llm.requests)
    llm.enqueue(Fault.delay(10, then="A considered answer, after a long think."))
    job = slow.submit("We expect 300M daily active users.", api_name="/send")
    deadline = time.monotonic() + 30
    while len(llm.requests) == asked:  # wait until the slow reply is stuck in the LLM call
        assert time.monotonic() < deadline, "the slow reply never reached the LLM"
        time.sleep(0.05)
    fast.predict("visual_search", "mid", 20, "offline", api_name="/start")
    fast.predict("We index about ten billion images.", api_name="/send")  # the same endpoint as the slow call
    # Ordering, not timing: the other user was served while the slow reply was still waiting on the LLM.
    assert not job.done(), "one user's slow reply held up another user"
    assert texts(job.result()[CHAT])[-1][1] == "A considered answer, after a long think."
