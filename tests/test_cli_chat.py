"""The terminal interview (`mlsd-bot chat`), saved sessions (`sessions`, `report`) and resume.

The first test runs the real console script in a child process; the others call
`mlsd_bot.cli.main` in this process (stdin replaced), which saves a Python start,
an index open and a model load per command.
"""

from __future__ import annotations

import html as html_lib
import io
import json
import os
import shutil
import subprocess

import pytest

from mlsd_bot.cli import main
from mlsd_bot.config import PROJECT_ROOT, load_settings
from mlsd_bot.interview import Interview
from mlsd_bot.sessions import SessionStore

MLSD_BOT = PROJECT_ROOT / ".venv" / "bin" / "mlsd-bot"


@pytest.fixture
def data_dir(real_index_settings, tmp_path):
    """A private copy of the real index, so the sessions written here stay here."""
    target = tmp_path / "data"
    shutil.copytree(real_index_settings.data_dir, target)
    return target


@pytest.fixture
def console(data_dir, subprocess_env, tmp_path):
    """The real console script in a child process."""
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        env = subprocess_env(MLSD_DATA_DIR=str(data_dir), MLSD_KNOWLEDGE_DIR=str(PROJECT_ROOT / "knowledge"))
        return subprocess.run([str(MLSD_BOT), *args], input=stdin, env=env, cwd=tmp_path, capture_output=True,
                              text=True, encoding="utf-8", timeout=300)
    return run


@pytest.fixture
def cli(data_dir, monkeypatch, capsys):
    """`mlsd-bot ARGS` in this process, `stdin` as its standard input; returns a CompletedProcess."""
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith(("MLSD_", "OPENAI_"))]:
                m.delenv(key)
            m.setenv("MLSD_DATA_DIR", str(data_dir))
            m.setenv("MLSD_KNOWLEDGE_DIR", str(PROJECT_ROOT / "knowledge"))
            m.setenv("MLSD_VOICE", "offline")
            m.setattr("sys.stdin", io.StringIO(stdin))
            capsys.readouterr()
            try:
                code = main(list(args))
            except SystemExit as e:
                code = e.code
            out = capsys.readouterr()
        return subprocess.CompletedProcess(["mlsd-bot", *args], code, out.out, out.err)
    return run


def test_chat_runs_an_interview_and_ends_with_the_report(console, cli, data_dir):
    script = "\n".join([
        "We expect around 300 million daily active users and the feed must load in under 200 ms.",
        "",  # an empty line is refused with a reason, and the interview goes on
        "/hint",
        "/next",
        "/end",
    ]) + "\n"
    proc = console("chat", "--case", "news_feed", stdin=script)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    problem = next(json.loads(line) for line in cli("cases", "--json").stdout.splitlines())
    assert "Design" in out and "Type an answer" in out  # the opening problem, then the refusal of ""
    assert "# Interview report" in out and "Overall:" in out
    sessions = SessionStore(data_dir / "sessions.sqlite3").list()
    assert len(sessions) == 1 and sessions[0].finished and sessions[0].case_id == "news_feed"
    assert sessions[0].score is not None and problem  # the report was saved with the session


def test_sessions_and_report_reprint_the_saved_interview(cli, data_dir):
    assert cli("chat", "--case", "visual_search", stdin="/end\n").returncode == 0
    sid = SessionStore(data_dir / "sessions.sqlite3").list()[0].id
    listing = cli("sessions")
    assert listing.returncode == 0 and sid in listing.stdout and "visual_search" in listing.stdout
    as_json = cli("report", sid, "--format", "json")
    report = json.loads(as_json.stdout)
    assert report["type"] == "report" and report["case"] == "visual_search" and set(report["phases"]) == {
        "clarify", "framing", "data", "model", "evaluation", "serving", "monitoring"}
    html = cli("report", "--format", "html")  # default: the latest finished interview
    assert html.returncode == 0 and html.stdout.startswith("<!doctype html>")
    opening = SessionStore(data_dir / "sessions.sqlite3").load(sid).turns[0].text
    markdown = cli("report", sid)
    for doc in (html_lib.unescape(html.stdout), markdown.stdout):  # the conversation comes with the report,
        assert "Transcript" in doc and opening.split(".")[0] in doc and "/end" in doc  # as in the downloads


def test_resume_continues_a_saved_interview(cli, data_dir, base_deps):
    settings = load_settings({"MLSD_DATA_DIR": str(data_dir)})
    store = SessionStore(settings.sessions_db)
    iv = Interview.new(base_deps, "harmful_content", on_change=store.save)
    list(iv.open())
    list(iv.send("Roughly two billion posts a day are uploaded, and reviewers label a sample of them."))
    turns_before = len(iv.state.turns)

    proc = cli("chat", "--resume", iv.state.session_id, stdin="/end\n")
    assert proc.returncode == 0, proc.stderr
    assert "two billion posts" in proc.stdout  # the earlier turns are shown again
    state = store.load(iv.state.session_id)
    assert state.finished and len(state.turns) == turns_before + 2  # "/end" and the closing turn


def test_a_session_id_starting_with_a_dash_resumes(cli, data_dir, base_deps):
    """Ids no longer contain '-'; one saved before that (argparse would read it as an option) still resumes."""
    from mlsd_bot.state import new_session_id

    assert not any("-" in new_session_id() for _ in range(2000))
    store = SessionStore(load_settings({"MLSD_DATA_DIR": str(data_dir)}).sessions_db)
    iv = Interview.new(base_deps, "harmful_content", on_change=store.save)
    iv.state.session_id = "-IGJtk0HXvLIkjJd_lsR2A"
    list(iv.open())
    proc = cli("chat", "--resume", iv.state.session_id, stdin="/end\n")
    assert proc.returncode == 0, proc.stderr
    assert store.load(iv.state.session_id).finished


def test_resume_errors_are_one_line(cli, data_dir):
    proc = cli("chat", "--resume", "nope")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "nope" in proc.stderr
    empty = cli("report")
    assert empty.returncode == 1 and "no finished interview" in empty.stderr
