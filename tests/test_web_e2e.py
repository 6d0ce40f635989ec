"""The browser app end to end: the real `python app.py`, driven by headless Chromium (Playwright).

The offline interviewer only, on a desktop viewport: a whole interview from setup
to report and history, markup typed by the candidate, and resuming after a server
crash. (tests/test_web_chat_e2e.py checks the chat behaviour on phone and desktop,
light and dark.) These tests fail - never skip - when Playwright or /usr/bin/chromium
is missing (`make test` installs Chromium through scripts/test-deps.sh). A screenshot
of each step goes to test-artifacts/ (gitignored), to look at when one breaks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from support.web_page import bot, box, command, download, open_page, say, shot, start_interview, user, wait_turns
from support.web_server import AppServer

from mlsd_bot.cases import load_cases
from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.report import to_html, to_markdown
from mlsd_bot.sessions import SessionStore

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
CASES = {c.id: c for c in load_cases(PROJECT_ROOT / "knowledge")}


@pytest.fixture
def page(browser: Browser, app: AppServer) -> Iterator[Page]:
    with open_page(browser, app.url) as p:
        yield p


def current_phase(page: Page):
    return page.locator("#tracker li[aria-current=step]")


def newest_session(app: AppServer):
    store = SessionStore(app.data_dir / "sessions.sqlite3")
    return store, store.list()[0]


def end_interview(page: Page) -> None:
    page.locator("#end").click()
    page.locator("#end-yes").click()
    expect(page.locator("#report-chart svg")).to_be_visible()


def test_interview_from_setup_to_report(app: AppServer, page: Page):
    page.goto(app.url)
    expect(page.locator("#start")).to_be_visible()
    expect(page.locator("#voice")).to_be_hidden()  # one voice: nothing to choose, nothing shown
    page.locator("#case input").click()
    page.get_by_role("option", name=CASES["video_recommendation"].title, exact=True).click()
    expect(page.locator("#case-info")).to_contain_text(CASES["video_recommendation"].problem[:60])
    shot(page, "e2e-1-setup")
    start_interview(page, app.url, CASES["video_recommendation"].title)
    expect(bot(page).first).to_contain_text(CASES["video_recommendation"].problem[:60])
    expect(current_phase(page)).to_have_attribute("data-phase", "clarify")
    expect(page.locator("#status")).to_contain_text("min left")

    say(page, "The goal is watch time. About 100M daily active users, and p99 latency under 200 ms.", via="enter")
    expect(page.locator("#tracker li[data-phase=clarify] .chip.on")).to_contain_text(["Scale", "Latency"])
    say(page, "Labels come from implicit feedback: watches, likes and skips, arriving with some delay.", via="button")
    say(page, "Watch history is personal data, so we need consent and GDPR deletion.")
    expect(user(page)).to_have_count(3)
    shot(page, "e2e-2-chat")

    command(page, "#hint")
    store, session = newest_session(app)
    hint = store.load(session.id).turns[-1]
    assert hint.action == "hint" and hint.text
    expect(bot(page).last).to_contain_text(hint.text[:40])

    command(page, "#next")
    expect(current_phase(page)).to_have_attribute("data-phase", "framing")
    expect(page.locator("#tracker li[data-phase=clarify]")).to_have_class("done")
    shot(page, "e2e-3-next-phase")

    end_interview(page)
    expect(page.locator("#report-head")).to_contain_text("Overall:")
    expect(page.locator("#report-md")).to_contain_text("What to study next")
    expect(page.locator("#transcript")).to_contain_text("Watch history is personal data")
    expect(page.locator("#talk")).to_be_hidden()
    shot(page, "e2e-4-report")

    state, report = store.load(session.id), store.report(session.id)
    assert report is not None, "the finished interview's report was not saved"
    name, text = download(page, "#dl-md")
    assert name.endswith(".md") and text == to_markdown(report, state.turns)
    name, text = download(page, "#dl-html")
    assert name.endswith(".html") and text == to_html(report, state.turns) and "<svg" in text

    page.get_by_role("tab", name="History").click()
    expect(page.locator(f'#history-list [data-session="{session.id}"]')).to_contain_text("Open report")
    expect(page.locator("#progress svg")).to_have_count(1)
    shot(page, "e2e-5-history")


def test_candidate_markup_is_shown_as_text(app: AppServer, page: Page):
    start_interview(page, app.url, CASES["news_feed"].title)
    message = f"{XSS} **not bold** <script>alert(2)</script> we expect 300M daily active users"
    say(page, message)
    expect(user(page).last).to_have_text(message)
    expect(user(page).last.locator("strong, img, script")).to_have_count(0)
    expect(page.locator("#chat img")).to_have_count(0)

    end_interview(page)  # the report quotes the message (it covered "scale"), the transcript has it: still text
    expect(page.locator("#report-md")).to_contain_text(XSS)
    expect(page.locator("#transcript")).to_contain_text(message)
    expect(page.locator("#report img, #report script")).to_have_count(0)
    shot(page, "e2e-6-escaped")


def test_resume_after_server_restart(app: AppServer, browser: Browser, page: Page):
    start_interview(page, app.url, CASES["similar_listings"].title)
    said = ["We want more bookings from similar listings; 50M monthly active users.",
            "Latency must stay under 100 ms at p99 because the carousel renders with the page."]
    for text in said:
        say(page, text)
    session_id = newest_session(app)[1].id

    app.restart()  # SIGKILL: nothing is saved on the way out
    page.close()  # the old tab would try to reconnect on its own; open the app again in the same browser
    page = page.context.new_page()
    page.goto(app.url)
    expect(page.locator("#notice")).to_be_visible()
    expect(page.locator("#notice")).to_contain_text(CASES["similar_listings"].title)
    shot(page, "e2e-7-resume-offer")
    page.locator("#resume-btn").click()
    expect(user(page)).to_have_text(said)
    expect(bot(page)).to_have_count(3)
    expect(current_phase(page)).to_have_attribute("data-phase", "clarify")
    wait_turns(page, 5)
    say(page, "Labels: a booking after a click is the positive, a click without booking is weaker.")
    expect(box(page)).to_have_value("")
    shot(page, "e2e-8-resumed")

    page.goto(f"{app.url}?session={session_id}")  # its link, in the same browser: offered again
    expect(page.locator("#notice")).to_contain_text("You have an unfinished interview")
    with open_page(browser, app.url) as other:  # another browser (no login): not its interview, "not found"
        other.goto(f"{app.url}?session={session_id}")
        expect(other.locator("#notice")).to_contain_text("No saved interview")
        expect(other.locator("#resume-btn")).to_be_hidden()
