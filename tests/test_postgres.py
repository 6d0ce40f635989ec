"""Sessions in PostgreSQL (MLSD_DATABASE_URL): the store itself, and two app processes sharing it.

A real PostgreSQL (Debian's package; `make test` installs it as root when missing)
runs in a temp dir on a free loopback port for this module (tests/support/pg_server.py).
Without it the tests fail and say what to install: they never skip. Each test gets
its own database. The two-process test starts `python app.py` twice on one database
and moves an interview from one to the other through the API, as a load balancer
without sticky sessions would.
"""

from __future__ import annotations

import itertools

import huggingface_hub.constants
import psycopg
import pytest
from gradio_client import Client
from support.pg_server import MissingPostgres, PgServer, free_port
from support.web_server import AppServer, copy_index

from mlsd_bot.config import load_settings
from mlsd_bot.errors import (BadInputError, ConfigError, SessionBusyError, SessionNotFoundError, SessionStaleError,
                             StoreError)
from mlsd_bot.interview import Interview
from mlsd_bot.locks import SessionLocks
from mlsd_bot.pgstore import PostgresSessionStore
from mlsd_bot.sessions import open_store
from mlsd_bot.state import InterviewState

_names = itertools.count()
CHAT, STATUS, TRACKER, HEAD, REPORT_MD = range(5)  # outputs of /send
SID, O_CHAT = range(2)  # outputs of /start and /resume


@pytest.fixture(scope="module")
def pg() -> PgServer:
    try:
        server = PgServer().start()
    except MissingPostgres as e:
        pytest.fail(str(e))
    yield server
    server.stop()


@pytest.fixture
def url(pg: PgServer) -> str:
    """A fresh, empty database for this test."""
    return pg.create_database(f"t{next(_names)}")


def play(iv: Interview, *messages: str) -> Interview:
    for part in iv.open():
        pass
    for text in messages:
        for part in iv.send(text):
            pass
    return iv


# --- the store --------------------------------------------------------------------------------

def test_save_load_list_and_report_round_trip(url, deps):
    store = PostgresSessionStore(url, clock=deps.clock)
    iv = play(Interview.new(deps, "news_feed", on_change=store.save),
              "About 300M daily users; the feed must render within 200 ms.", "/end")
    report = iv.report()
    store.save(iv.state, report)
    deps.clock.advance(60)
    later = play(Interview.new(deps, "visual_search", level="mid", on_change=store.save))

    assert store.load(iv.state.session_id) == iv.state
    assert store.report(iv.state.session_id) == report
    assert store.report(later.state.session_id) is None
    newest, oldest = store.list()
    assert (newest.id, newest.finished, newest.level) == (later.state.session_id, False, "mid")
    assert (oldest.id, oldest.finished, oldest.score) == (iv.state.session_id, True, report.overall.score)
    assert oldest.phase_scores == {p: v.score for p, v in report.phases.items()}
    assert store.latest_unfinished().id == later.state.session_id
    with pytest.raises(SessionNotFoundError):
        store.load("nosuch00001")


def test_each_owner_sees_only_their_sessions_and_cannot_take_one_over(url):
    store = PostgresSessionStore(url)
    alice, bob = store.scoped("alice"), store.scoped("bob")
    alice.save(InterviewState(case_id="news_feed", session_id="alice000001"))
    bob.save(InterviewState(case_id="visual_search", session_id="bob00000001"))
    assert [s.id for s in alice.list()] == ["alice000001"] and [s.id for s in bob.list()] == ["bob00000001"]
    with pytest.raises(SessionNotFoundError):
        alice.load("bob00000001")
    hijack = InterviewState(case_id="visual_search", session_id="bob00000001", finished=True)
    with pytest.raises(SessionNotFoundError):
        alice.save(hijack)
    assert bob.load("bob00000001").finished is False and store.scoped("").list() == []


def test_a_damaged_row_is_a_one_line_error_without_the_password(url, pg):
    store = PostgresSessionStore(url)
    store.save(InterviewState(case_id="news_feed", session_id="good0000001"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO mlsd_sessions (id, case_id, level, started, updated, finished, phase, state, "
                     "report) VALUES ('bad00000001', 'news_feed', 'senior', 0, 0, true, 'done', "
                     "'{\"case_id\": 5', '{\"phases\": 7}')")
    for read in (store.load, store.report):
        with pytest.raises(BadInputError) as e:
            read("bad00000001")
        message = str(e.value)
        assert "bad00000001" in message and "damaged" in message and "\n" not in message
        assert pg.password not in message and "mlsd:***@127.0.0.1" in message
    assert {s.id: s.phase_scores for s in store.list()} == {"bad00000001": {}, "good0000001": {}}
    assert store.load("good0000001").case_id == "news_feed"  # the other sessions still load


def test_errors_and_settings_never_show_the_password(pg):
    wrong = pg.url().replace(pg.password, "not-the-" + pg.password)
    down = pg.url().replace(f":{pg.port}/", f":{free_port()}/")
    for bad in (wrong, down):
        with pytest.raises(StoreError) as e:
            PostgresSessionStore(bad)
        message = str(e.value)
        assert "sessions database failed" in message and "\n" not in message and pg.password not in message
    settings = load_settings({"MLSD_DATABASE_URL": pg.url(), "MLSD_VOICE": "offline"})
    assert pg.password not in repr(settings) and isinstance(open_store(settings), PostgresSessionStore)
    with pytest.raises(ConfigError) as e:
        load_settings({"MLSD_DATABASE_URL": f"mysql://root:{pg.password}@db/x"})
    assert pg.password not in str(e.value)


def test_one_writer_per_session_across_processes(url):
    """Two stores are two processes' connections: the advisory lock is the server's, not the process's."""
    first, second = PostgresSessionStore(url), PostgresSessionStore(url)
    state = InterviewState(case_id="news_feed", session_id="lock0000001")
    first.save(state)
    release = first.lock(state)
    with pytest.raises(SessionBusyError):
        second.lock(state)
    release()
    release()  # idempotent
    second.lock(state)()

    ahead = state.model_copy(deep=True)
    ahead.turns = InterviewState.model_validate({**state.model_dump(), "turns": [
        {"n": 1, "role": "interviewer", "phase": "clarify", "text": "Design a feed."}]}).turns
    second.save(ahead)  # another process went on with the interview
    with pytest.raises(SessionStaleError):
        first.lock(state)  # this copy is behind: it must not write over the newer turns
    first.lock(ahead)()


def test_the_web_layer_takes_the_cross_process_lock(url, deps):
    """locks.SessionLocks with the store's lock plugged in: a send elsewhere meanwhile is refused."""
    here, there = SessionLocks(), SessionLocks()
    store_here, store_there = PostgresSessionStore(url), PostgresSessionStore(url)
    here.across, there.across = store_here.lock, store_there.lock
    iv = play(Interview.new(deps, "news_feed", on_change=store_here.save))
    copy = Interview(store_there.load(iv.state.session_id), deps, on_change=store_there.save)
    stream = here.send(iv, "We have about 300M daily active users.")
    next(stream)
    with pytest.raises(SessionBusyError):
        there.send(copy, "The latency budget is 200 ms.")
    for _ in stream:
        pass
    with pytest.raises(SessionStaleError):  # `copy` was loaded before the turn above
        there.send(copy, "The latency budget is 200 ms.")
    fresh = Interview(store_there.load(iv.state.session_id), deps, on_change=store_there.save)
    for _ in there.send(fresh, "The latency budget is 200 ms."):
        pass
    roles = [t.role for t in store_here.load(iv.state.session_id).turns]
    assert roles == ["interviewer", "candidate", "interviewer", "candidate", "interviewer"]


# --- two app processes on one database ----------------------------------------------------------

@pytest.fixture
def two_apps(url, real_index_settings, tmp_path, subprocess_env, _child_guard, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    apps = []
    try:
        for name in ("a", "b"):
            data = copy_index(real_index_settings.data_dir, tmp_path / name / "data")
            env = subprocess_env(MLSD_DATA_DIR=str(data), MLSD_DATABASE_URL=url, GRADIO_ANALYTICS_ENABLED="False")
            apps.append(AppServer(env, tmp_path / name / "app.log", _child_guard[1]))
            apps[-1].start()  # one after the other: both would compete for the 2 cores
        yield apps
    finally:
        for app in apps:
            app.stop()


def test_an_interview_started_on_one_process_is_finished_on_the_other(two_apps, url, pg, tmp_path):
    a, b = two_apps
    on_a = Client(a.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "a"))
    on_b = Client(b.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "b"))
    started = on_a.predict("news_feed", "senior", 45, "offline", api_name="/start")
    sid, key = started[SID], started[-1]  # the last output: the client's owner key (no login)
    said = on_a.predict("About 300M daily users open the feed; it must render within 200 ms.", api_name="/send")

    resumed = on_b.predict(sid, key, api_name="/resume")
    assert resumed[O_CHAT] == said[CHAT]  # process b reads what process a saved
    on_b.predict("Labels come from comments and dwell time joined to impressions by request id.", api_name="/send")
    done = on_b.predict("/end", api_name="/send")
    assert "Interview finished" in done[STATUS] and "Overall" in done[REPORT_MD]

    store = PostgresSessionStore(url)
    state, report = store.load(sid), store.report(sid)
    assert state.finished and report is not None and f"{report.overall.score}" in done[HEAD]
    candidate = [t.text for t in state.turns if t.role == "candidate"]
    assert candidate == ["About 300M daily users open the feed; it must render within 200 ms.",
                         "Labels come from comments and dwell time joined to impressions by request id.", "/end"]

    # Process a still holds its old copy: a send there must not overwrite what b saved.
    on_a.predict("The model is a two-tower retriever.", api_name="/send")
    assert store.load(sid) == state and store.report(sid) == report
    for app in (a, b):
        app.assert_offline()
        assert pg.password not in app.log()


def test_terminal_chat_takes_the_cross_process_lock(url, deps, tmp_path, monkeypatch):
    """`chat --resume` on PostgreSQL: another process mid-turn, or gone further, stops it with one line."""
    import io

    from mlsd_bot.chat import run_chat
    from mlsd_bot.errors import MlsdError

    store, elsewhere = PostgresSessionStore(url), PostgresSessionStore(url)
    iv = play(Interview.new(deps, "news_feed", on_change=store.save), "We have about 300M daily active users.")
    sid, saved_turns = iv.state.session_id, len(iv.state.turns)
    settings = load_settings({"MLSD_DATABASE_URL": url, "MLSD_DATA_DIR": str(tmp_path / "data")})
    monkeypatch.setattr("mlsd_bot.chat.build_deps", lambda settings, voice=None: deps)

    def chat(lines: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(lines))
        run_chat(settings, None, "senior", 45, None, resume=sid)

    release = elsewhere.lock(iv.state)  # another process is in the middle of a turn
    with pytest.raises(MlsdError, match=f"another window.*--resume {sid}"):
        chat("The latency budget is 200 ms.\n")
    release()
    assert len(store.load(sid).turns) == saved_turns  # nothing of the refused message was saved

    ahead = Interview(store.load(sid), deps, on_change=elsewhere.save)  # another process goes on with it
    list(ahead.send("Labels come from hides."))
    stale = iv.state  # chat below loads the newest copy, so make the saved row newer than that load
    monkeypatch.setattr(PostgresSessionStore, "load", lambda self, s, owner=None: stale)
    with pytest.raises(MlsdError, match="another window"):
        chat("The latency budget is 200 ms.\n")
    monkeypatch.undo()
    assert store.load(sid).turns == ahead.state.turns  # the newer turns were not written over

    monkeypatch.setattr("mlsd_bot.chat.build_deps", lambda settings, voice=None: deps)
    chat("The latency budget is 200 ms.\n/end\n")
    assert store.load(sid).finished
    elsewhere.lock(store.load(sid))()  # the chat let go of the session
