"""The browser app end to end: the real `python app.py`, driven by headless Chromium (Playwright).

These tests fail - never skip - when Playwright or /usr/bin/chromium is missing
(`make test` installs Chromium through scripts/test-deps.sh). A screenshot of
each step goes to test-artifacts/ (gitignored), to look at when one breaks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from support.web_server import AppServer

from mlsd_bot.cases import load_cases
from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.report import to_html, to_markdown
from mlsd_bot.sessions import SessionStore

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
TIMEOUT_MS = 30_000
XSS = "<img src=x onerror=alert(1)>"
CASES = {c.id: c for c in load_cases(PROJECT_ROOT / "knowledge")}
expect.set_options(timeout=TIMEOUT_MS)  # the first reply of a fresh server loads models: allow more than 5 s


# --- fixtures ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, app: AppServer) -> Iterator[Page]:
    """A new browser session (its own localStorage). Any JS dialog or off-host request fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    dialogs, outside = [], []
    context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    context.on("request", lambda r: outside.append(r.url) if r.url.startswith("http") and not r.url.startswith(
        app.url) else None)
    yield context.new_page()
    context.close()
    assert not dialogs, f"a script ran in the page: {dialogs}"
    assert not outside, f"the page fetched from other hosts: {outside}"


# --- helpers ----------------------------------------------------------------------

def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def bot(page: Page) -> Locator:
    return page.locator("#chat [data-testid=bot]")


def user(page: Page) -> Locator:
    return page.locator("#chat [data-testid=user]")


def current_phase(page: Page) -> Locator:
    return page.locator("#tracker li[aria-current=step]")


def start_interview(page: Page, app: AppServer, case_id: str) -> None:
    page.goto(app.url)
    page.locator("#case input").click()
    page.get_by_role("option", name=CASES[case_id].title, exact=True).click()
    page.locator("#start").click()
    expect(bot(page)).to_have_count(1)
    expect(bot(page).first).to_contain_text(CASES[case_id].problem[:60])
    idle(page)


def idle(page: Page) -> None:
    """Wait for the reply to finish streaming: gradio marks its outputs "generating" until then.

    (A second Enter while a reply streams is ignored: gradio's trigger_mode "once".)
    """
    expect(page.locator("[data-testid=status-tracker].generating")).to_have_count(0)


def say(page: Page, text: str, via: str = "enter") -> None:
    """Send a message (Enter key or Send button) and wait for the interviewer's whole reply."""
    replies = bot(page).count()
    box = page.locator("#msg textarea")
    box.fill(text)
    box.press("Enter") if via == "enter" else page.locator("#send").click()
    expect(bot(page)).to_have_count(replies + 1)
    expect(box).to_have_value("")
    idle(page)


def click_and_wait_reply(page: Page, button: str) -> None:
    replies = bot(page).count()
    page.locator(button).click()
    expect(bot(page)).to_have_count(replies + 1)
    idle(page)


def download(page: Page, button: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.locator(button).click()
    return info.value.suggested_filename, Path(info.value.path()).read_text(encoding="utf-8")


def newest_session(app: AppServer):
    store = SessionStore(app.data_dir / "sessions.sqlite3")
    return store, store.list()[0]


# --- tests ------------------------------------------------------------------------

def test_interview_from_setup_to_report(app: AppServer, page: Page):
    page.goto(app.url)
    expect(page.locator("#start")).to_be_visible()
    shot(page, "e2e-1-setup")
    start_interview(page, app, "video_recommendation")
    expect(current_phase(page)).to_have_attribute("data-phase", "clarify")
    expect(page.locator("#clock")).to_contain_text("left")

    say(page, "The goal is watch time. About 100M daily active users, and p99 latency under 200 ms.", via="enter")
    expect(page.locator("#tracker li[data-phase=clarify] .chip.on")).to_contain_text(["Scale", "Latency"])
    say(page, "Labels come from implicit feedback: watches, likes and skips, which arrive with some delay.", via="button")
    say(page, "Watch history is personal data, so we need consent and GDPR deletion.")
    expect(user(page)).to_have_count(3)
    shot(page, "e2e-2-chat")

    click_and_wait_reply(page, "#hint")
    store, session = newest_session(app)
    hint = store.load(session.id).turns[-1]
    assert hint.action == "hint" and hint.text
    expect(bot(page).last).to_contain_text(hint.text[:40])

    click_and_wait_reply(page, "#next")
    expect(current_phase(page)).to_have_attribute("data-phase", "framing")
    expect(page.locator("#tracker li[data-phase=clarify]")).to_have_class("done")
    shot(page, "e2e-3-next-phase")

    page.locator("#end").click()
    expect(page.locator("#report-chart svg")).to_be_visible()
    expect(page.locator("#report-head")).to_contain_text("Overall:")
    expect(page.locator("#report-md")).to_contain_text("What to study next")
    expect(page.locator("#talk")).to_be_hidden()
    shot(page, "e2e-4-report")

    report = store.report(session.id)
    assert report is not None, "the finished interview's report was not saved"
    name, text = download(page, "#dl-md")
    assert name.endswith(".md") and text == to_markdown(report)
    name, text = download(page, "#dl-html")
    assert name.endswith(".html") and text == to_html(report) and "<svg" in text

    page.get_by_role("tab", name="History").click()
    expect(page.locator("#history-table")).to_contain_text(session.id)
    expect(page.locator("#progress svg")).to_be_visible()
    shot(page, "e2e-5-history")


def test_candidate_markup_is_shown_as_text(app: AppServer, page: Page):
    start_interview(page, app, "news_feed")
    message = f"{XSS} **not bold** <script>alert(2)</script> we expect 300M daily active users"
    say(page, message)
    expect(user(page).last).to_have_text(message)
    expect(user(page).last.locator("strong, img, script")).to_have_count(0)
    expect(page.locator("#chat img")).to_have_count(0)

    page.locator("#end").click()  # the report quotes the message (it covered "scale"): still text
    expect(page.locator("#report-md")).to_contain_text(XSS)
    expect(page.locator("#report img")).to_have_count(0)
    shot(page, "e2e-6-escaped")


def test_resume_after_server_restart(app: AppServer, browser: Browser, page: Page):
    start_interview(page, app, "similar_listings")
    said = ["We want more bookings from similar listings; 50M monthly active users.",
            "Latency must stay under 100 ms at p99 because the carousel renders with the page."]
    for text in said:
        say(page, text)
    session_id = newest_session(app)[1].id

    app.restart()  # SIGKILL: nothing is saved on the way out
    page.close()  # the old tab would try to reconnect on its own; open the app again in the same browser
    page = page.context.new_page()
    page.goto(app.url)
    expect(page.locator("#resume-box")).to_be_visible()
    expect(page.locator("#resume-box")).to_contain_text(CASES["similar_listings"].title)
    shot(page, "e2e-7-resume-offer")
    page.locator("#resume-btn").click()
    expect(user(page)).to_have_text(said)
    expect(bot(page)).to_have_count(3)
    expect(current_phase(page)).to_have_attribute("data-phase", "clarify")
    say(page, "Labels: a booking after a click is the positive, a click without booking is weaker.")
    shot(page, "e2e-8-resumed")

    other = browser.new_page()  # another browser, no saved id: the link ?session=ID offers the same interview
    other.goto(f"{app.url}?session={session_id}")
    expect(other.locator("#resume-box")).to_be_visible(timeout=TIMEOUT_MS)
    other.close()
