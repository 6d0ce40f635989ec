"""Users (MLSD_USERS): scrypt-hashed passwords, throttled wrong passwords, and sessions per owner."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import stat

import pytest

from conftest import FakeClock
from mlsd_bot.config import load_settings
from mlsd_bot.errors import ConfigError, SessionNotFoundError
from mlsd_bot.sessions import SessionStore
from mlsd_bot.state import InterviewState
from mlsd_bot.users import Authenticator, LoginThrottle, add_user, load_users

PASSWORD = "correct horse battery"


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users.txt"
    add_user(path, "alice", PASSWORD)
    add_user(path, "bob", "another secret")
    return path


def test_the_users_file_holds_salted_hashes_only_and_is_private(users_file):
    text = users_file.read_text()
    assert PASSWORD not in text and "another secret" not in text
    lines = text.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["alice", "bob"]
    assert all(ln.split(":")[1] == "scrypt" for ln in lines)
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    add_user(users_file, "carol", PASSWORD)  # same password, other salt: another hash
    hashes = {ln.split(":", 1)[0]: ln.split(":", 1)[1] for ln in users_file.read_text().splitlines()}
    assert hashes["alice"] != hashes["carol"]


def test_right_password_wrong_password_unknown_user(users_file):
    auth = Authenticator.from_file(users_file)
    assert auth("alice", PASSWORD) is True
    assert auth("alice", PASSWORD + "!") is False
    assert auth("bob", PASSWORD) is False
    assert auth("mallory", PASSWORD) is False
    assert auth("alice", "") is False


def test_changing_a_password_replaces_the_line(users_file):
    add_user(users_file, "alice", "a brand new one")
    assert len(load_users(users_file)) == 2
    auth = Authenticator.from_file(users_file)
    assert auth("alice", "a brand new one") and not auth("alice", PASSWORD)


@pytest.mark.parametrize("content,problem", [
    ("alice:plain-password\n", ":1: expected name:scrypt"),
    ("# users\n\nalice:scrypt:16384:8:1:00ff:zz\n", ":3: expected"),
    ("alice:scrypt:1000:8:1:00ff:00ff\n", "scrypt parameters out of range"),
    ("alice:scrypt:16384:8:1:00ff:00ff\nalice:scrypt:16384:8:1:00ff:00ff\n", ":2: user 'alice' is listed twice"),
    ("# nobody yet\n", "no user in the file"),
])
def test_a_bad_users_file_is_one_line_naming_file_and_line(tmp_path, content, problem):
    path = tmp_path / "users.txt"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_users(path)
    assert problem in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    assert "00ff:00ff" not in str(err.value)  # a hash is never echoed


def test_add_user_refuses_bad_names_and_short_passwords(tmp_path):
    with pytest.raises(ConfigError, match="user name"):
        add_user(tmp_path / "u", "al ice", PASSWORD)
    with pytest.raises(ConfigError, match="at least 8"):
        add_user(tmp_path / "u", "alice", "short")
    assert not (tmp_path / "u").exists()


def test_wrong_passwords_are_throttled_per_name(users_file):
    clock = FakeClock()
    auth = Authenticator(load_users(users_file), LoginThrottle(free=3, base=2.0, cap=60.0, clock=clock))
    for _ in range(3):
        assert not auth("alice", "guess")
    assert auth.throttle.wait("alice") == 2.0
    assert not auth("alice", PASSWORD)  # even the right password is refused, unchecked, while throttled
    assert auth("bob", "another secret")  # other names are not affected
    clock.advance(2.0)
    assert not auth("alice", "guess again")  # 4th failure: the wait doubles
    assert auth.throttle.wait("alice") == 4.0
    clock.advance(4.0)
    assert auth("alice", PASSWORD)  # a success resets the count
    assert auth.throttle.wait("alice") == 0.0


def test_the_throttle_wait_is_capped_and_its_memory_bounded():
    clock = FakeClock()
    throttle = LoginThrottle(free=1, base=1.0, cap=10.0, clock=clock)
    for _ in range(30):
        throttle.failed("x")
    assert throttle.wait("x") == 10.0
    throttle.MAX_NAMES = 50
    for i in range(200):
        throttle.failed(f"name{i}")
    assert len(throttle._failures) == 50 and throttle.wait("name199") > 0


def test_mlsd_users_is_a_setting():
    assert load_settings({}).users_file is None
    assert str(load_settings({"MLSD_USERS": "/etc/mlsd/users"}).users_file) == "/etc/mlsd/users"


def test_add_user_command_reads_the_password_from_stdin(tmp_path, monkeypatch):
    from mlsd_bot.cli import main

    path = tmp_path / "users.txt"
    monkeypatch.setenv("MLSD_USERS", str(path))
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["add-user", "dana"]) == 0
    assert Authenticator.from_file(path)("dana", PASSWORD)
    assert PASSWORD not in err.getvalue()


# --- sessions per owner ------------------------------------------------------------------------------

def state(sid: str, case: str = "news_feed") -> InterviewState:
    return InterviewState(case_id=case, session_id=sid)


def test_each_owner_sees_and_loads_only_their_sessions(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    alice, bob = store.scoped("alice"), store.scoped("bob")
    alice.save(state("alice000001"))
    bob.save(state("bob00000001", "visual_search"))
    store.save(state("nobody00001"))  # no login: owner ""

    assert [s.id for s in alice.list()] == ["alice000001"]
    assert [s.id for s in bob.list()] == ["bob00000001"]
    assert [s.id for s in store.scoped("").list()] == ["nobody00001"]
    assert {s.id for s in store.list()} == {"alice000001", "bob00000001", "nobody00001"}  # the operator's view
    assert alice.load("alice000001").case_id == "news_feed"
    for other in ("bob00000001", "nobody00001"):
        with pytest.raises(SessionNotFoundError):  # the same answer as for an id that does not exist
            alice.load(other)
        with pytest.raises(SessionNotFoundError):
            alice.report(other)
    assert alice.latest_unfinished().id == "alice000001"


def test_a_session_cannot_be_overwritten_under_another_owner(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    store.scoped("bob").save(state("bob00000001"))
    hijack = state("bob00000001").model_copy(update={"finished": True})
    with pytest.raises(SessionNotFoundError):
        store.scoped("alice").save(hijack)
    assert store.scoped("bob").load("bob00000001").finished is False
    assert store.scoped("alice").list() == []


def test_a_file_from_before_owners_is_migrated_not_moved_aside(tmp_path):
    db = tmp_path / "sessions.sqlite3"
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, case_id TEXT NOT NULL, level TEXT NOT NULL, "
                    "started REAL NOT NULL, updated REAL NOT NULL, finished INTEGER NOT NULL, phase TEXT NOT NULL, "
                    "score INTEGER, state TEXT NOT NULL, report TEXT)")
        con.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?)",
                    ("old00000001", "news_feed", "senior", 0, 0, 0, "clarify", None,
                     state("old00000001").model_dump_json(), None))
    warnings: list[str] = []
    store = SessionStore(db, warn=warnings.append)
    assert warnings == []
    assert store.scoped("").load("old00000001").session_id == "old00000001"  # the sessions so far are nobody's
    assert store.scoped("alice").list() == []
