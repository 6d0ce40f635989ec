"""Take the README screenshots: docs/setup.png, docs/interview.png, docs/report.png, docs/phone.png.

Runs `python app.py` on a scratch data dir (the knowledge index is copied from
the configured data dir, or built when there is none), then plays a short
interview in headless Chromium - Debian's /usr/bin/chromium, nothing is
downloaded. The phone shot opens the same interview at 390x844 in dark mode.
Your own saved interviews are never touched.

    .venv/bin/python scripts/screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mlsd_bot.config import load_settings

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
CASE_TITLE = "Video recommendation"
SHOTS = None  # the step in STEPS where the interview screenshots are taken
# (phase, candidate message): the interview played for the screenshots. The split in the data
# phase is a mistake on purpose, so the interviewer pushes back (with a source) before the fix.
STEPS = [
    ("clarify", "Before drawing boxes: is success long-term retention, with watch time as a proxy and reports or "
                "'not interested' as guardrails? I'd assume about 500M daily active users, and the home feed needs "
                "p99 latency under 200 ms."),
    ("clarify", "Labels come from implicit feedback - watch completion, likes and skips - and arrive within minutes; "
                "explicit ratings are too sparse to train on."),
    ("clarify", "Watch history is personal data, so we need consent, GDPR deletion within 30 days, and no inferred "
                "sensitive categories as features."),
    ("framing", "I'd frame it as ranking: for each user and candidate video predict the probability of a satisfied "
                "watch (over half completed) plus like and share heads, combined into one score. The input is the "
                "user, context and candidate video; the output is a ranked list."),
    ("data", "Sources: impression logs joined with watch events and the video catalogue. Features: user and video "
             "embeddings, upload recency, watch-history aggregates and context such as device and hour."),
    ("data", "For the split I'd shuffle all logged sessions randomly into train and test."),
    SHOTS,
    ("data", "You're right - I'd split by time instead: train on 28 days and validate on the following day, so the "
             "model never sees the future, which mirrors serving."),
    ("model", "Baseline first: popularity per region, because it is cheap and sets the bar. Then a two-stage funnel: "
              "a two-tower retrieval model returns 1,000 candidates and a DCN ranker with multi-task heads for "
              "completion, like and share scores them."),
    ("evaluation", "Offline: recall@1000 for retrieval and NDCG@20 for ranking on the next day's data. Online: a "
                   "two-week A/B test on retention and satisfied watch time with reports as a guardrail."),
    ("serving", "Video embeddings are precomputed into an HNSW index refreshed hourly for new uploads; the user tower "
                "runs online, features come from a feature store, and the ranker scores 1,000 candidates within the "
                "200 ms budget."),
    ("monitoring", "Monitor feature drift with PSI per feature, the prediction distribution and calibration, plus the "
                   "online completion rate and reports, on dashboards with alerts. Retrain the ranker daily on a "
                   "sliding window and roll back when the online metric falls 2% below control."),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scratch_data_dir() -> Path:
    """A temp data dir holding a copy of the existing index (so no 25 s ingest), without sessions."""
    src, dest = load_settings().data_dir, Path(tempfile.mkdtemp(prefix="mlsd-shots-")) / "data"
    if (src / "chroma").is_dir():
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("sessions.sqlite3*", "web-secret"))
    return dest


def start_app(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "MLSD_DATA_DIR": str(data_dir), "MLSD_VOICE": "offline", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never via a proxy
    for _ in range(600):
        try:
            direct.open(f"http://127.0.0.1:{port}/config", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit("app.py exited early")
            time.sleep(0.3)
    proc.kill()
    sys.exit("app.py did not start")


def turns(page: Page) -> int:
    """The turn count the status bar was last rendered with: it is re-rendered after every turn."""
    return int(page.locator("#status .mlsd-status").get_attribute("data-turns"))


def wait_turns(page: Page, n: int) -> None:
    expect(page.locator(f'#status .mlsd-status[data-turns="{n}"]')).to_have_count(1)


def say(page: Page, text: str) -> None:
    before = turns(page)
    page.locator("#msg textarea").fill(text)
    page.locator("#msg textarea").press("Enter")
    wait_turns(page, before + 2)


def go_to_phase(page: Page, phase: str) -> None:
    """Press Next until the status bar shows `phase` (the interviewer may already have moved on)."""
    while page.locator("#status .mlsd-status").get_attribute("data-phase") != phase:
        before = turns(page)
        page.locator("#next").click()
        wait_turns(page, before + 2)


def play(page: Page, url: str, out: Path, phone: Page) -> None:
    page.goto(url)
    page.locator("#case input").click()
    page.get_by_role("option", name=CASE_TITLE, exact=True).click()
    page.locator(".mlsd-head").click()  # close the dropdown so the whole form shows
    page.wait_for_timeout(600)  # let its closing animation finish
    page.screenshot(path=str(out / "setup.png"))  # the setup form: case and its problem, level, time budget
    page.locator("#start").click()
    wait_turns(page, 1)
    for step in STEPS:
        if step is SHOTS:
            interview_shots(page, phone, url, out)
        elif not page.locator("#talk").is_visible():
            break  # covering the last phase may already have closed the interview
        else:
            go_to_phase(page, step[0])
            say(page, step[1])
    if page.locator("#end").is_visible():  # covering the last phase may already have closed the interview
        page.locator("#end").click()
        page.locator("#end-yes").click()
    expect(page.locator("#report-chart svg")).to_be_visible()
    page.screenshot(path=str(out / "report.png"), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 1500})


def interview_shots(page: Page, phone: Page, url: str, out: Path) -> None:
    """The chat with the last sources opened (if the interviewer cited any), and the phone shot."""
    if page.locator("#chat details summary").count():
        page.locator("#chat details summary").last.click()
        page.locator("#chat details blockquote").last.evaluate("e => e.scrollIntoView({block: 'end'})")
    else:
        print("note: no interviewer turn cited a source this time", file=sys.stderr)
    page.screenshot(path=str(out / "interview.png"))
    phone_shot(phone, url, session_id(page), page.locator("#chat [data-testid=user]").count(), out)


def session_id(page: Page) -> str:
    """The interview's id, from the browser's saved state (what a ?session= link carries)."""
    page.get_by_role("tab", name="History").click()
    sid = page.locator("#history-list [data-session]").first.get_attribute("data-session")
    page.get_by_role("tab", name="Interview").click()
    return sid


def phone_shot(phone: Page, url: str, sid: str, messages: int, out: Path) -> None:
    """The same interview on a 390x844 phone in dark mode, opened by its ?session= link."""
    phone.goto(f"{url}?session={sid}")
    phone.locator("#resume-btn").click()
    expect(phone.locator("#chat [data-testid=user]")).to_have_count(messages)
    phone.wait_for_timeout(600)  # the chat scrolls to its last message
    phone.screenshot(path=str(out / "phone.png"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port, data_dir = free_port(), scratch_data_dir()
    app = start_app(data_dir, port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            phone = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True,
                                     has_touch=True, device_scale_factor=2)
            for p in (page, phone):
                p.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            play(page, f"http://127.0.0.1:{port}/", args.out, phone)
            browser.close()
    finally:
        app.kill()
        app.wait()
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    print(f"wrote {', '.join(str(args.out / n) for n in ('setup.png', 'interview.png', 'report.png', 'phone.png'))}")


if __name__ == "__main__":
    main()
