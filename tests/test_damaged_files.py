"""Damaged files never cost a traceback: sessions DB, saved state, Chroma store, replay input, broken notes.

Each case checks the user's side: one line naming the file and what to do, the
exit code, and that what could be kept was kept (the damaged sessions file is
moved aside intact; the other cases of a broken knowledge base still run).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.errors import BadInputError, SessionNotFoundError, StoreError
from mlsd_bot.interview import Interview, build_deps
from mlsd_bot.sessions import SessionStore
from mlsd_bot.state import InterviewState
from mlsd_bot.store import _forget_local_client, ingest, open_index
from mlsd_bot.web.control import Control

GARBAGE = b"this is not a database at all \x00\xff" * 200


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`mlsd-bot ARGV` in-process: exit code, stdout, stderr."""
    from mlsd_bot.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def one_line(stderr: str, prefix: str = "mlsd-bot: error: ") -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), stderr
    return lines[0]


def a_state(case: str = "news_feed", sid: str = "s0000000001") -> InterviewState:
    return InterviewState(case_id=case, session_id=sid)


# --- the sessions database -------------------------------------------------------------------------

def test_a_garbage_sessions_db_is_moved_aside_and_a_fresh_one_started(tmp_path):
    db = tmp_path / "sessions.sqlite3"
    db.write_bytes(GARBAGE)
    warnings: list[str] = []
    store = SessionStore(db, warn=warnings.append)

    aside = [p for p in tmp_path.iterdir() if p.name.startswith("sessions.sqlite3.damaged-")]
    assert len(aside) == 1 and aside[0].read_bytes() == GARBAGE  # kept for the user, untouched
    assert len(warnings) == 1 and str(db) in warnings[0] and str(aside[0]) in warnings[0]
    assert "\n" not in warnings[0]
    assert store.list() == []
    store.save(a_state())
    assert SessionStore(db).load("s0000000001").case_id == "news_feed"  # the fresh file works


def test_corrupt_pages_are_found_on_opening(tmp_path):
    db = tmp_path / "sessions.sqlite3"
    store = SessionStore(db)
    for i in range(200):  # enough rows for several pages
        store.save(a_state(sid=f"s{i:010d}").model_copy(update={"asked": ["x" * 200]}))
    store.close()  # every page in the file itself, none left in the WAL
    data = bytearray(db.read_bytes())
    assert len(data) > 8 * 4096 and not db.with_name(db.name + "-wal").exists()
    data[4096:4096 * 6] = os.urandom(4096 * 5)  # pages 2-6: table and index b-tree pages
    db.write_bytes(bytes(data))

    warnings: list[str] = []
    fresh = SessionStore(db, warn=warnings.append)
    assert len(warnings) == 1 and "damaged" in warnings[0]
    assert fresh.list() == []
    assert any(p.name.startswith("sessions.sqlite3.damaged-") for p in tmp_path.iterdir())


def test_a_file_damaged_while_running_is_replaced_and_the_save_retried(tmp_path):
    db = tmp_path / "sessions.sqlite3"
    warnings: list[str] = []
    store = SessionStore(db, warn=warnings.append)
    store.save(a_state(sid="before"))
    db.write_bytes(GARBAGE)  # e.g. another program overwrote it

    store.save(a_state(sid="after"))  # does not raise: moved aside, saved in a fresh file
    assert [s.id for s in store.list()] == ["after"]
    assert len(warnings) == 1 and "damaged" in warnings[0]
    with pytest.raises(SessionNotFoundError):
        store.load("before")


def test_each_thread_keeps_one_connection(tmp_path, monkeypatch):
    """Connections are reused per thread: opening one per call was a large share of a turn's CPU.
    (The test above shows a file overwritten under them is still found.)"""
    import threading

    opened = []
    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: opened.append(1) or real_connect(*a, **k))
    db = tmp_path / "sessions.sqlite3"
    store = SessionStore(db)
    start = len(opened)
    for i in range(20):
        store.save(a_state(sid=f"main{i:06d}"))
    workers = [threading.Thread(target=lambda n=n: [store.save(a_state(sid=f"t{n}-{i:06d}")) for i in range(10)])
               for n in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(store.list(limit=1000)) == 50
    assert len(opened) - start <= 4  # this thread's and one per worker thread, not one per call


def test_a_foreign_sqlite_file_is_moved_aside_too(tmp_path):
    db = tmp_path / "sessions.sqlite3"
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute("CREATE TABLE sessions (id TEXT, something_else TEXT)")
    warnings: list[str] = []
    SessionStore(db, warn=warnings.append).save(a_state())
    assert len(warnings) == 1 and "other columns" in warnings[0]


def test_sessions_command_on_a_garbage_db_warns_once_and_goes_on(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "sessions.sqlite3").write_bytes(GARBAGE)
    monkeypatch.setenv("MLSD_DATA_DIR", str(data))
    code, out, err = run_cli("sessions")
    assert code == 0 and "no saved interviews yet" in out
    warning = one_line(err, "mlsd-bot: warning: ")
    assert str(data / "sessions.sqlite3") in warning and "sessions.sqlite3.damaged-" in warning


def test_an_unusable_sessions_path_is_one_line(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "sessions.sqlite3").mkdir(parents=True)  # a folder where the file should be
    monkeypatch.setenv("MLSD_DATA_DIR", str(data))
    code, out, err = run_cli("sessions")
    assert code == 1 and out == ""
    assert str(data / "sessions.sqlite3") in one_line(err)
    assert (data / "sessions.sqlite3").is_dir()  # not "repaired": it is not damage, it is a wrong path


# --- saved state and report -------------------------------------------------------------------------

def _damage_row(db, sid: str, column: str, value: str) -> None:
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute(f"UPDATE sessions SET {column}=? WHERE id=?", (value, sid))


@pytest.mark.parametrize("value", ['{"case_id": "news_feed", "turns": [', '{"case_id": 7}', "[]", ""])
def test_invalid_saved_state_is_one_line_naming_the_session_and_file(tmp_path, monkeypatch, value, deps):
    data = tmp_path / "data"
    store = SessionStore(data / "sessions.sqlite3")
    store.save(a_state(sid="broken00001"))
    store.save(a_state(sid="healthy0001"))
    _damage_row(store.path, "broken00001", "state", value)

    with pytest.raises(BadInputError) as err:
        store.load("broken00001")
    assert "broken00001" in str(err.value) and str(store.path) in str(err.value) and "\n" not in str(err.value)
    assert store.load("healthy0001").session_id == "healthy0001"  # the others are untouched
    assert {s.id for s in store.list()} == {"broken00001", "healthy0001"}
    assert Control(deps, store, tmp_path).resumable("broken00001", "") is None  # the web offers no resume

    monkeypatch.setenv("MLSD_DATA_DIR", str(data))
    code, out, err_text = run_cli("chat", "--resume", "broken00001")
    assert code == 1 and "broken00001" in one_line(err_text)


def test_a_damaged_saved_report_is_one_line_and_the_list_still_shows(tmp_path, monkeypatch, deps):
    data = tmp_path / "data"
    store = SessionStore(data / "sessions.sqlite3")
    iv = Interview.new(deps, "news_feed", on_change=store.save)
    list(iv.open())
    list(iv.end())
    store.save(iv.state, iv.report())
    _damage_row(store.path, iv.state.session_id, "report", '{"phases": 3')

    assert store.list()[0].phase_scores == {}
    monkeypatch.setenv("MLSD_DATA_DIR", str(data))
    code, _, err = run_cli("report", iv.state.session_id)
    assert code == 1 and "saved report" in one_line(err)
    code, out, _ = run_cli("sessions")
    assert code == 0 and iv.state.session_id in out


def test_a_session_id_with_a_surrogate_is_just_not_found(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    with pytest.raises(SessionNotFoundError):
        store.load("abc\ud800")


# --- the Chroma store ---------------------------------------------------------------------------------

@pytest.fixture
def garbage_index(settings_for):
    """Settings whose local index was built, then overwritten with garbage."""
    settings = settings_for()
    ingest(settings, progress=None)
    _forget_local_client(settings.index_dir)  # as a new process would: nothing cached
    (settings.index_dir / "chroma.sqlite3").write_bytes(GARBAGE)
    return settings


def test_a_garbage_chroma_store_is_one_line_naming_the_file_and_the_remedy(garbage_index):
    with pytest.raises(StoreError) as err:
        open_index(garbage_index)
    message = str(err.value)
    assert message.startswith(str(garbage_index.index_dir / "chroma.sqlite3"))
    assert "mlsd-bot ingest --rebuild" in message and str(garbage_index.index_dir) in message
    assert "\n" not in message


def test_search_on_a_garbage_store_is_one_line_and_ingest_rebuild_repairs_it(garbage_index, monkeypatch):
    monkeypatch.setenv("MLSD_DATA_DIR", str(garbage_index.data_dir))
    monkeypatch.setenv("MLSD_KNOWLEDGE_DIR", str(garbage_index.knowledge_dir))
    code, out, err = run_cli("search", "population stability index", "--json")
    assert code == 1 and out == ""
    assert "ingest --rebuild" in one_line(err)

    code, _, err = run_cli("ingest", "--rebuild")
    assert code == 0, err
    assert "4 note(s) embedded" in err
    code, out, err = run_cli("search", "population stability index", "--json", "-k", "1")
    assert code == 0, err
    assert json.loads(out)[0]["source"] == "framework/monitoring.md"


def test_the_app_exits_with_one_line_on_a_garbage_store(real_index_settings, tmp_path, subprocess_env):
    data = tmp_path / "data"
    shutil.copytree(real_index_settings.data_dir, data)
    (data / "chroma" / "chroma.sqlite3").write_bytes(GARBAGE)
    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "app.py"), "--port", "9"],
                          env=subprocess_env(MLSD_DATA_DIR=str(data)), capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mlsd-bot: error: ") and "chroma.sqlite3" in last and "--rebuild" in last


# --- replay input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("content,where,problem", [
    (b'{"text": "fine"}\n{"text": "caf\xe9"}\n', ":2:", "not UTF-8 text (byte 0xe9 at column 14)"),
    (b'{"text": "fine"}\nnot json\n', ":2:", "not valid JSON"),
    (b'\xff\xfe{\x00"\x00', ":1:", "not UTF-8 text"),  # UTF-16
    (b'{"text": "ok"}\n{"text": 5}\n', ":2:", "needs a string field 'text'"),
    (b'{"text": "ok"}\n{"text": "\\u0000 \\u001b"}\n', ":2:", "Type an answer"),  # nothing left once cleaned
])
def test_a_bad_replay_file_is_one_line_naming_file_and_line(cli_in_process, content, where, problem):
    path = cli_in_process / "script.jsonl"
    path.write_bytes(content)
    code, out, err = run_cli("replay", str(path), "--case", "news_feed", "--json")
    assert code == 1 and out == ""
    line = one_line(err)
    assert f"{path}{where}" in line and problem in line


def test_replay_prints_its_result_even_when_the_save_fails(cli_in_process):
    (cli_in_process / "data" / "sessions.sqlite3").mkdir(parents=True)  # cannot be opened as a database
    path = cli_in_process / "script.jsonl"
    path.write_text('{"text": "About 300 million daily users; the feed loads within 200 ms."}\n{"text": "/end"}\n')
    code, out, err = run_cli("replay", str(path), "--case", "news_feed", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]["type"] == "report" and lines[-2]["action"] == "close"
    warning = one_line(err, "mlsd-bot: warning: the interview was not saved: ")
    assert "sessions.sqlite3" in warning


def test_replay_text_with_surrogates_and_controls_is_cleaned_and_saved(cli_in_process):
    path = cli_in_process / "script.jsonl"
    path.write_text('{"text": "We expect \\ud800 300M users \\u001b[2J and p99 200 ms"}\n', encoding="utf-8")
    code, out, err = run_cli("replay", str(path), "--case", "news_feed", "--json")
    assert code == 0, err
    state = SessionStore(cli_in_process / "data" / "sessions.sqlite3").load(
        SessionStore(cli_in_process / "data" / "sessions.sqlite3").list()[0].id)
    assert state.turns[1].text == "We expect \ufffd 300M users [2J and p99 200 ms"


# --- a broken note ----------------------------------------------------------------------------------------

@pytest.fixture
def broken_blur(settings_for, kb_dir, base_deps, monkeypatch):
    """The tiny knowledge base with the toy_blur case note broken (the detector is the shared one)."""
    monkeypatch.setattr("mlsd_bot.interview.SignalDetector", lambda *a, **k: base_deps.detector)
    (kb_dir / "case_studies" / "toy_blur.md").write_text("---\nid: toy_blur\ntitle: [unclosed\n---\n")
    return settings_for()


def test_a_broken_note_takes_only_its_case_out_of_service(broken_blur, capsys):
    deps = build_deps(broken_blur)
    warning = one_line(capsys.readouterr().err, "mlsd-bot: warning: ")
    assert "case_studies/toy_blur.md" in warning and "out of service" in warning
    assert sorted(deps.cases) == ["toy_feed"]
    iv = Interview.new(deps, "toy_feed")
    list(iv.open())
    assert "".join(iv.send("About a million members open the feed daily.")).strip()


def test_other_cases_still_run_from_the_cli(broken_blur, monkeypatch):
    monkeypatch.setenv("MLSD_DATA_DIR", str(broken_blur.data_dir))
    monkeypatch.setenv("MLSD_KNOWLEDGE_DIR", str(broken_blur.knowledge_dir))
    code, out, err = run_cli("cases", "--json")
    assert code == 0 and [c["id"] for c in json.loads(out)] == ["toy_feed"]
    assert "case_studies/toy_blur.md" in one_line(err, "mlsd-bot: warning: ")

    script = broken_blur.data_dir.parent / "script.jsonl"
    script.write_text('{"text": "A million members a day."}\n{"text": "/end"}\n')
    code, out, err = run_cli("replay", str(script), "--case", "toy_feed", "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["case"] == "toy_feed"
    code, _, err = run_cli("replay", str(script), "--case", "toy_blur", "--json")
    assert code == 1 and "unknown case 'toy_blur'" in err.strip().splitlines()[-1]

    code, _, err = run_cli("ingest")  # ingest stays strict: it names the note and changes nothing
    assert code == 1 and "case_studies/toy_blur.md" in one_line(err)
