"""Users in the browser app: each user (MLSD_USERS) or, without login, each browser sees only its own interviews.

The real `python app.py` runs in a child process. Through the API (gradio_client) two
logged-in users try to list, resume, continue and read each other's sessions; without
login two API clients and two browser contexts (Playwright, Debian Chromium) do the
same. Another owner's session id must get the very words a made-up id gets. Wrong
passwords are throttled by the login check the app hands to gradio (`login_check`).
"""

from __future__ import annotations

import re
import sqlite3
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from playwright.sync_api import Browser, expect
from support.web_page import bot, open_page, say, start_interview
from support.web_server import AppServer, copy_index

from mlsd_bot.cases import load_cases
from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.errors import ConfigError
from mlsd_bot.sessions import SessionStore
from mlsd_bot.users import LoginThrottle, add_user
from mlsd_bot.web.control import browser_owner, new_browser_key
from mlsd_bot.web.login import login_check

pytestmark = pytest.mark.browser

CASES = {c.id: c for c in load_cases(PROJECT_ROOT / "knowledge")}
PASSWORDS = {"alice": "alice-correct-horse", "bob": "bob-battery-staple"}
SID, O_CHAT, O_STATUS, O_TRACKER, O_KEY = range(5)  # outputs of /start (O_KEY: the owner key, no login)
CHAT = 0  # first output of /send
NOT_FOUND = "That interview is finished or was not found - start a new one."
MADE_UP = "Zm9yZ2VkLWlkLW5vdC1yZWFs"  # an id in the new format that was never issued
ID_FORMAT = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16): 128 random bits


@pytest.fixture(autouse=True)
def _client_stays_offline(monkeypatch) -> None:
    """gradio_client's own calls to huggingface.co are off (see tests/test_web_client.py)."""
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.txt"
    for name, password in PASSWORDS.items():
        add_user(path, name, password)
    return path


class LoginAppServer(AppServer):
    """The app behind a login: /config answers 401 until one logs in, so "up" is when it says so."""

    def _answers(self) -> bool:
        try:
            self.get("config")
        except urllib.error.HTTPError as e:
            return e.code == 401
        raise AssertionError("/config answered without a login")

@pytest.fixture(scope="module")
def users_app(users_file, real_index_settings, tmp_path_factory, subprocess_env, _child_guard) -> Iterator[AppServer]:
    """The app with a login: the users of `users_file`."""
    workdir = tmp_path_factory.mktemp("web-users")
    data = copy_index(real_index_settings.data_dir, workdir / "data")
    env = subprocess_env(MLSD_USERS=str(users_file), MLSD_DATA_DIR=str(data), GRADIO_ANALYTICS_ENABLED="False")
    server = LoginAppServer(env, workdir / "app.log", _child_guard[1]).start()
    server.assert_offline()
    yield server
    server.stop()


def client(app: AppServer, tmp_path: Path, user: str | None = None, password: str | None = None) -> Client:
    auth = (user, password or PASSWORDS[user]) if user else None
    return Client(app.url, auth=auth, verbose=False, analytics_enabled=False, download_files=str(tmp_path))


def store(app: AppServer) -> SessionStore:
    return SessionStore(app.data_dir / "sessions.sqlite3")


def listed(history_html: str) -> set[str]:
    return set(re.findall(r'data-session="([^"]+)"', history_html))


def refusal(c: Client, *args, api_name: str) -> str:
    with pytest.raises(AppError) as e:
        c.predict(*args, api_name=api_name)
    return str(e.value)


# --- two users through the API ----------------------------------------------------------------

def test_each_user_lists_resumes_and_continues_only_their_own_sessions(users_app: AppServer, tmp_path: Path):
    alice = client(users_app, tmp_path / "a", "alice")
    a_sid = alice.predict("news_feed", "senior", 45, "offline", api_name="/start")[SID]
    alice.predict("We expect 300M daily active users opening the feed.", api_name="/send")
    bob = client(users_app, tmp_path / "b", "bob")
    b_sid = bob.predict("visual_search", "mid", 20, "offline", api_name="/start")[SID]
    assert ID_FORMAT.match(a_sid) and ID_FORMAT.match(b_sid)

    assert a_sid in listed(alice.predict(api_name="/history")[0]) and b_sid not in listed(
        alice.predict(api_name="/history")[0])
    assert listed(bob.predict(api_name="/history")[0]) == {b_sid}
    assert {s.id for s in store(users_app).scoped("alice").list()} == {a_sid}  # saved under its user

    # Bob, in a fresh client, tries Alice's id: the same words as an id that never existed.
    intruder = client(users_app, tmp_path / "c", "bob")
    assert refusal(intruder, a_sid, api_name="/resume") == refusal(intruder, MADE_UP, api_name="/resume")
    assert NOT_FOUND in refusal(intruder, a_sid, api_name="/resume")
    assert "Start an interview first" in refusal(intruder, "Let me take over this interview.", api_name="/send")
    turns = store(users_app).load(a_sid).turns
    assert len(turns) == 3 and "take over" not in " ".join(t.text for t in turns)

    # Alice resumes her own from another client, ends it; her report never shows up for Bob.
    again = client(users_app, tmp_path / "d", "alice")
    assert len(again.predict(a_sid, api_name="/resume")[O_CHAT]) == 3
    assert "Overall:" in again.predict("/end", api_name="/send")[3]
    assert store(users_app).report(a_sid) is not None
    assert a_sid not in listed(bob.predict(api_name="/history")[0])
    assert refusal(intruder, a_sid, api_name="/resume") == refusal(intruder, MADE_UP, api_name="/resume")


def test_old_ids_still_load_for_their_owner(users_app: AppServer, tmp_path: Path):
    alice = client(users_app, tmp_path / "a", "alice")
    sid = alice.predict("news_feed", "senior", 45, "offline", api_name="/start")[SID]
    old = store(users_app).load(sid).model_copy(update={"session_id": "00c0ffee1234"})  # a 12-hex id of before
    store(users_app).scoped("alice").save(old)
    resumed = client(users_app, tmp_path / "b", "alice").predict("00c0ffee1234", api_name="/resume")
    assert resumed[SID] == "00c0ffee1234" and len(resumed[O_CHAT]) == 1
    assert NOT_FOUND in refusal(client(users_app, tmp_path / "c", "bob"), "00c0ffee1234", api_name="/resume")


def test_a_wrong_password_does_not_log_in(users_app: AppServer, tmp_path: Path):
    with pytest.raises(ValueError, match="Could not login"):
        client(users_app, tmp_path, "alice", password="not-her-password")
    with pytest.raises(ValueError, match="Could not login"):
        client(users_app, tmp_path, "mallory", password="anything-at-all")
    assert "alice-correct-horse" not in users_app.log() and "not-her-password" not in users_app.log()


# --- the login check the app uses ---------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_passwords_are_throttled_by_the_apps_login(settings_for, users_file):
    clock = Clock()
    check = login_check(settings_for(MLSD_USERS=str(users_file)), LoginThrottle(free=5, base=30, clock=clock))
    assert check("alice", PASSWORDS["alice"]) and not check("alice", PASSWORDS["bob"])
    for _ in range(4):
        assert not check("alice", "guess")
    assert not check("alice", PASSWORDS["alice"]), "after 5 wrong passwords even the right one waits"
    assert check("bob", PASSWORDS["bob"]), "the throttle is per name"
    clock.now += 31
    assert check("alice", PASSWORDS["alice"])


def test_the_single_mlsd_auth_user_logs_in_throttled_too(settings_for, users_file):
    clock = Clock()
    check = login_check(settings_for(MLSD_AUTH="carol:carol-secret-1"), LoginThrottle(free=2, base=10, clock=clock))
    assert check("carol", "carol-secret-1") and not check("alice", PASSWORDS["alice"])
    assert not check("carol", "x") and not check("carol", "y") and not check("carol", "carol-secret-1")
    clock.now += 11
    assert check("carol", "carol-secret-1")
    both = login_check(settings_for(MLSD_AUTH="carol:carol-secret-1", MLSD_USERS=str(users_file)))
    assert both("carol", "carol-secret-1") and both("bob", PASSWORDS["bob"])
    with pytest.raises(ConfigError, match="MLSD_AUTH's user 'alice' is also in"):
        login_check(settings_for(MLSD_AUTH="alice:other-password", MLSD_USERS=str(users_file)))
    assert login_check(settings_for()) is None  # no login configured: no login page


# --- no login: one API client or browser sees its own sessions --------------------------------

def test_only_a_real_browser_key_names_an_owner():
    key = new_browser_key()
    owner = browser_owner(key)
    assert owner.startswith("browser:") and key not in owner and owner == browser_owner(key)
    assert browser_owner(new_browser_key()) != owner
    for bad in (None, "", "alice", "short-key", key + "!", key + "\n", " " * 30, 12345678901234567890123, [key]):
        assert browser_owner(bad) is None, bad  # never "" (the sessions of before), never a user's name


def test_without_login_each_api_client_has_its_own_key(app: AppServer, tmp_path: Path):
    first, second = client(app, tmp_path / "a"), client(app, tmp_path / "b")
    out = first.predict("news_feed", "senior", 45, "offline", api_name="/start")
    sid, key = out[SID], out[O_KEY]
    first.predict("We expect 300M daily active users opening the feed.", api_name="/send")
    assert sid in listed(first.predict(api_name="/history")[0])

    assert sid not in listed(second.predict(api_name="/history")[0])
    assert refusal(second, sid, api_name="/resume") == refusal(second, MADE_UP, api_name="/resume")
    assert "Start an interview first" in refusal(second, "hello", api_name="/send")
    other_key = second.predict("visual_search", "mid", 20, "offline", api_name="/start")[O_KEY]
    assert other_key != key and sid not in listed(second.predict(api_name="/history")[0])
    assert "not a key that /start returned" in refusal(client(app, tmp_path / "c"), sid, "guess", api_name="/resume")

    # The key is what a browser keeps: whoever holds it sees that browser's sessions.
    third = client(app, tmp_path / "d")
    assert sid in listed(third.predict(key, api_name="/history")[0])
    assert len(third.predict(sid, key, api_name="/resume")[O_CHAT]) == 3
    with sqlite3.connect(app.data_dir / "sessions.sqlite3") as db:
        owners = {row[0] for row in db.execute("SELECT owner FROM sessions WHERE id=?", (sid,))}
    assert owners == {browser_owner(key)} and key not in "".join(owners)  # the store keeps a hash, not the key


def test_two_browsers_without_login_see_separate_histories(app: AppServer, browser: Browser):
    with open_page(browser, app.url) as first:
        start_interview(first, app.url, CASES["similar_listings"].title)
        say(first, "We want more bookings from similar listings; 50M monthly active users.")
        first.get_by_role("tab", name="History").click()
        rows = first.locator("#history-list [data-session]")
        expect(rows).to_have_count(1)
        sid = rows.first.get_attribute("data-session")
        assert ID_FORMAT.match(sid)

        with open_page(browser, app.url) as second:  # a new context: its own local storage
            second.goto(app.url)
            second.get_by_role("tab", name="History").click()
            expect(second.locator("#history-list")).to_contain_text("No interviews yet")
            expect(second.locator(f'#history-list [data-session="{sid}"]')).to_have_count(0)
            second.goto(f"{app.url}?session={sid}")  # the first browser's link
            expect(second.locator("#notice")).to_contain_text(f"No saved interview {sid} here")
            expect(second.locator("#resume-btn")).to_be_hidden()
            start_interview(second, app.url, CASES["news_feed"].title)
            second.get_by_role("tab", name="History").click()
            expect(second.locator("#history-list [data-session]")).to_have_count(1)
            expect(second.locator(f'#history-list [data-session="{sid}"]')).to_have_count(0)

        # The first browser still has its own, and only it, after a reload (the key is in local storage).
        first.goto(app.url)
        expect(first.locator("#notice")).to_contain_text("You have an unfinished interview")
        first.get_by_role("tab", name="History").click()
        expect(first.locator("#history-list [data-session]")).to_have_count(1)
        first.locator(f'#history-list [data-session="{sid}"]').click()
        expect(bot(first)).to_have_count(2)
