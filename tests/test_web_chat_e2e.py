"""The browser app behaves like the chat apps people know (issue #10), on a desktop and on a
390x844 phone, in light and dark mode: the real `python app.py` in headless Debian Chromium.

The app runs once for the module, with both voices: the offline interviewer for most
interviews, and an LLM voice answered by the scripted fake OpenAI server where a reply
must stay pending for a while (to see what the page does meanwhile). Orderings are
checked as orderings (a DOM observer's log, the validator's answer), never by timing.
These tests fail - never skip - when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from support.openai_server import FakeOpenAIServer, Fault
from support.web_page import (VIEWS, assert_nothing_wider_than_the_viewport, assert_readable, bot, box, command,
                              download, open_page, say, shot, start_interview, turns, user, wait_turns)
from support.web_server import AppServer, launch_app

from mlsd_bot.cases import load_cases
from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.interview import MAX_MESSAGE_CHARS
from mlsd_bot.report import to_html, to_markdown
from mlsd_bot.sessions import SessionStore

pytestmark = pytest.mark.browser

CASES = {c.id: c for c in load_cases(PROJECT_ROOT / "knowledge")}
TITLES = {cid: c.title for cid, c in CASES.items()}
REPLY_DELAY = 4.0  # seconds the fake LLM holds a reply: the page must stay usable meanwhile
# Records (users, bots) after every change of the chat's DOM, from now on.
RECORD_CHAT_JS = """() => {
  const chat = document.querySelector('#chat'), log = window.chatLog = [];
  const note = () => log.push({users: chat.querySelectorAll('[data-testid=user]').length,
                               bots: chat.querySelectorAll('[data-testid=bot]').length});
  new MutationObserver(note).observe(chat, {childList: true, subtree: true, characterData: true});
  note();
}"""


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def chat_app(llm, real_index_settings, tmp_path_factory, subprocess_env, _child_guard) -> Iterator[AppServer]:
    env = subprocess_env(MLSD_VOICE="openai", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test-web",
                         MLSD_LLM_RETRIES="0")
    server = launch_app(real_index_settings.data_dir, tmp_path_factory.mktemp("web-chat"), env, _child_guard[1])
    yield server
    server.stop()


@pytest.fixture(params=list(VIEWS))
def view(request) -> str:
    return request.param


def store(app: AppServer) -> SessionStore:
    return SessionStore(app.data_dir / "sessions.sqlite3")


def chat_texts(page: Page) -> list[str]:
    return page.locator("#chat [data-testid=bot], #chat [data-testid=user]").all_inner_texts()


def validation(page: Page):
    """Where gradio shows a validator's message: in the message box's own block."""
    return page.locator("#msg")


def assert_conversation_intact(page: Page, before: list[str]) -> None:
    """The chat, status bar, tracker and box are all still there and usable; no error badges."""
    assert chat_texts(page) == before
    expect(page.locator("#status")).to_contain_text("min left")
    expect(page.locator("#tracker li")).to_have_count(7)
    expect(page.get_by_text("Error", exact=True).filter(visible=True)).to_have_count(0)
    box(page).click()  # fails if anything (an error overlay) takes the click
    expect(box(page)).to_be_editable()


# --- tests ---------------------------------------------------------------------------

def test_rejected_messages_leave_the_conversation_usable(view: str, chat_app: AppServer, browser: Browser):
    with open_page(browser, chat_app.url, view) as page:
        start_interview(page, chat_app.url, TITLES["news_feed"], voice="offline")
        expect(box(page)).to_be_focused()
        send = page.locator("#send").bounding_box()
        assert send["y"] + send["height"] <= VIEWS[view][1], "Send should be on screen without scrolling"
        say(page, "We expect 300M daily active users and p99 latency under 200 ms.")
        before, sid = chat_texts(page), store(chat_app).list()[0].id

        box(page).press("Enter")  # an empty message
        expect(validation(page)).to_contain_text("Type an answer first (or /hint, /next or /end).")
        assert_conversation_intact(page, before)

        too_long = "We would shard the index by region. " * (MAX_MESSAGE_CHARS // 36 + 2)
        box(page).fill(too_long)
        counter = page.locator("#msg-count")
        expect(counter).to_have_class(re.compile(r"\bover\b"))
        expect(counter).to_contain_text(f"{len(too_long.strip()):,} / {MAX_MESSAGE_CHARS:,}")
        box(page).press("Enter")
        expect(validation(page)).to_contain_text(f"the limit is {MAX_MESSAGE_CHARS:,}")
        expect(box(page)).to_have_value(too_long)  # kept, to be split
        assert_conversation_intact(page, before)

        box(page).fill("/foo")
        box(page).press("Enter")
        expect(validation(page)).to_contain_text("/foo is not a command: use /hint, /next or /end")
        assert_conversation_intact(page, before)
        assert len(store(chat_app).load(sid).turns) == 3, "no rejected message may reach the interview"
        shot(page, f"chat-rejected-{view}")

        say(page, "Labels come from implicit feedback: likes, comments and hides.")
        expect(validation(page)).not_to_contain_text("not a command")
        expect(counter).to_contain_text(f"0 / {MAX_MESSAGE_CHARS:,}")
        command(page, "#hint")
        expect(box(page)).to_be_focused()
        command(page, "#next")
        expect(box(page)).to_be_focused()
        expect(page.locator("#status")).to_contain_text("2/7 Framing the problem as an ML task")

        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")  # e.g. to the tracker
        bar = page.locator("#status").bounding_box()
        assert 0 <= bar["y"] and bar["y"] + bar["height"] <= VIEWS[view][1], "the status bar should stay in view"
        expect(page.locator("#status")).to_contain_text("min left")
        assert_nothing_wider_than_the_viewport(page)


def test_the_message_shows_at_once_and_typing_survives_a_pending_reply(view: str, llm: FakeOpenAIServer,
                                                                       chat_app: AppServer, browser: Browser):
    with open_page(browser, chat_app.url, view) as page:
        llm.enqueue("Welcome. Today we design a news feed: what would you like to know first?")
        start_interview(page, chat_app.url, TITLES["news_feed"], voice="llm")
        page.evaluate(RECORD_CHAT_JS)
        llm.enqueue(Fault.delay(REPLY_DELAY, then="Thanks. What latency budget should the feed meet?"))
        box(page).fill("We expect 300M daily active users.")
        box(page).press("Enter")

        expect(user(page)).to_have_text(["We expect 300M daily active users."])
        expect(box(page)).to_have_value("")
        expect(page.locator('#chat [aria-label="Loading response"]')).to_be_visible()  # the typing indicator
        # ... and nothing else: no timers, no spinner over the box, no pulsing borders
        expect(page.get_by_text(re.compile(r"processing|\d+\.\d+s")).filter(visible=True)).to_have_count(0)
        expect(page.locator("[data-testid=status-tracker].generating").filter(visible=True)).to_have_count(0)

        box(page).press_sequentially("and a draft typed while waiting")
        box(page).press("Enter")  # a second message now would race the reply: refused, and kept
        expect(validation(page)).to_contain_text("still answering")
        expect(box(page)).to_have_value("and a draft typed while waiting")

        expect(bot(page)).to_have_count(2)
        wait_turns(page, 3)
        expect(bot(page).last).to_contain_text("What latency budget should the feed meet?")
        expect(box(page)).to_have_value("and a draft typed while waiting")  # the reply did not wipe it
        log = page.evaluate("window.chatLog")
        first = next(entry for entry in log if entry["users"] == 1)
        assert first["bots"] == 1, f"the message should show before the reply: {log}"
        shot(page, f"chat-pending-{view}")
        llm.enqueue("Good. Let us move on.")
        box(page).press("Enter")  # now it goes
        expect(user(page)).to_have_count(2)
        wait_turns(page, 5)
        expect(box(page)).to_have_value("")
    llm.assert_complete()


def test_end_needs_confirmation_and_the_transcript_stays(view: str, chat_app: AppServer, browser: Browser):
    said = ["Success is watch time per user; 500M daily active users; p99 latency under 200 ms.",
            "Labels are implicit: completions, likes and skips, which arrive within minutes."]
    with open_page(browser, chat_app.url, view) as page:
        start_interview(page, chat_app.url, TITLES["video_recommendation"], voice="offline")
        say(page, said[0])
        sid = store(chat_app).list()[0].id
        page.locator("#end").click()
        expect(page.locator("#end-yes")).to_be_visible()
        expect(page.locator("#chat")).to_be_visible()
        assert not store(chat_app).load(sid).finished, "one tap on End must not end the interview"
        page.locator("#end-no").click()
        expect(page.locator("#confirm-end")).to_be_hidden()
        expect(box(page)).to_be_focused()
        say(page, said[1])

        page.locator("#end").click()
        page.locator("#end-yes").click()
        expect(page.locator("#report-chart svg")).to_be_visible()
        expect(page.locator("#talk")).to_be_hidden()
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text(said[0])
        expect(transcript).to_contain_text(said[1])
        expect(transcript).to_contain_text("Interviewer")

        state, report = store(chat_app).load(sid), store(chat_app).report(sid)
        assert state.finished and report is not None
        name, text = download(page, "#dl-md")
        assert name.endswith(".md") and text == to_markdown(report, state.turns) and said[1] in text
        name, text = download(page, "#dl-html")
        assert name.endswith(".html") and text == to_html(report, state.turns) and said[1] in text
        assert_readable(page, "#report-chart svg text")
        assert_nothing_wider_than_the_viewport(page)
        shot(page, f"chat-report-{view}")


def test_history_rows_open_a_report_or_resume(view: str, chat_app: AppServer, browser: Browser):
    with open_page(browser, chat_app.url, view) as page:
        start_interview(page, chat_app.url, TITLES["visual_search"], voice="offline")
        say(page, "Users upload a photo; we index about ten billion images.")
        page.locator("#end").click()
        page.locator("#end-yes").click()
        expect(page.locator("#report-head")).to_contain_text("Overall:")
        finished = store(chat_app).list()[0]
        page.locator("#new").click()
        start_interview(page, chat_app.url, TITLES["news_feed"], voice="offline")
        say(page, "We expect 300M daily active users opening the feed.")
        unfinished = store(chat_app).list()[0]
        assert finished.finished and not unfinished.finished

        page = page.context.new_page()  # a new tab of the same browser: nothing of the above is open
        page.goto(chat_app.url)
        page.get_by_role("tab", name="History").click()
        expect(page.locator(f'#history-list [data-session="{unfinished.id}"]')).to_contain_text("Resume")
        assert_nothing_wider_than_the_viewport(page)
        assert_readable(page, "#progress svg text")
        shot(page, f"chat-history-{view}")
        page.locator(f'#history-list [data-session="{finished.id}"]').click()
        expect(page.locator("#report-head")).to_contain_text(f"Overall: {finished.score}/100")
        expect(page.locator("#transcript")).to_contain_text("we index about ten billion images")
        expect(page.locator("#talk")).to_be_hidden()

        page.get_by_role("tab", name="History").click()
        page.locator(f'#history-list [data-session="{unfinished.id}"]').click()
        expect(user(page)).to_have_text(["We expect 300M daily active users opening the feed."])
        expect(page.locator("#status")).to_contain_text("1/7 Clarifying requirements")
        assert turns(page) == 3


def test_session_links_say_what_they_open(chat_app: AppServer, browser: Browser):
    with open_page(browser, chat_app.url) as page:
        page.goto(f"{chat_app.url}?session=0000deadbeef")
        expect(page.locator("#notice")).to_contain_text("No saved interview")
        expect(page.locator("#resume-btn")).to_be_hidden()

        start_interview(page, chat_app.url, TITLES["similar_listings"], voice="offline")
        page.locator("#end").click()
        page.locator("#end-yes").click()
        expect(page.locator("#report-head")).to_contain_text("Overall:")
        sid = store(chat_app).list()[0].id
        page.goto(f"{chat_app.url}?session={sid}")
        expect(page.locator("#notice")).to_contain_text("That interview is finished")
        page.locator("#resume-btn").click()  # now labelled "Open its report"
        expect(page.locator("#report-head")).to_contain_text("Overall:")
        expect(page.locator("#transcript")).to_contain_text(CASES["similar_listings"].problem[:60])
