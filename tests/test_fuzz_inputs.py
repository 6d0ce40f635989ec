"""Property-based tests: arbitrary Unicode, bytes and command sequences at every edge.

The CLI parsers, the JSONL reader, `detect` and `replay` through `main()`, and the
interview state machine (`Interview.send` on the offline deps) are fed what
hypothesis generates: lone surrogates, control characters, invalid UTF-8, huge or
empty messages, commands in any order. Nothing may raise anything but the
project's own one-line errors; phases never go backwards; every accepted message
gets exactly one reply, in order; the state always survives a JSON round trip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import FakeClock
from mlsd_bot.cli import _clean_args, build_parser, main, read_jsonl
from mlsd_bot.contract import PHASES, SIGNALS
from mlsd_bot.errors import BadInputError, MlsdError
from mlsd_bot.interview import MAX_MESSAGE_CHARS, Interview
from mlsd_bot.state import InterviewState
from mlsd_bot.textsafe import clean

# derandomize: the same examples every run, so a failure is reproducible and the suite never flakes.
# Function-scoped fixtures (monkeypatch, tmp_path) are set up once per test, not per example:
# these tests use them only for things every example may share (env vars, a patched factory).
SLOW = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FAST = settings(max_examples=200, deadline=None, database=None, derandomize=True)

ANY_CHAR = st.characters(codec=None, blacklist_categories=())  # surrogates and controls included
any_text = st.text(alphabet=ANY_CHAR, max_size=60)
COMMANDS = ["ingest", "cases", "search", "detect", "replay", "chat", "report", "sessions"]
FLAGS = ["--json", "--case", "--phase", "-k", "--file", "--level", "--minutes", "--voice", "--resume",
         "--format", "--seconds-per-message", "--rebuild", "--help", "news_feed", "senior", "45", "-1", "nan"]
argv_lists = st.lists(st.one_of(st.sampled_from(COMMANDS + FLAGS), any_text), max_size=8)

DESIGN_TALK = [
    "We have about 300 million daily active users and the feed must load within 200 ms at p99.",
    "Labels come from clicks and dwell time; I'd treat a hide as a strong negative.",
    "Start with logistic regression as a baseline, then a two-tower retrieval model and a GBDT ranker.",
    "Offline NDCG@10 on a time-based split, then an A/B test on sessions per user.",
    "Monitor feature drift with PSI and retrain weekly; roll back if CTR drops 2%.",
]
message = st.one_of(
    st.sampled_from(["/hint", "/next", "/end", "", "   ", "\x00\x1b[2J", "\ud800", "let's move on"]),
    st.sampled_from(DESIGN_TALK),
    any_text,
    st.builds(lambda t, n: t * n, st.sampled_from(DESIGN_TALK), st.integers(1, 80)),  # also > MAX_MESSAGE_CHARS
)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: --help (0) or a bad argument (2)
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(stderr: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlsd-bot: error: "), stderr
    assert "Traceback" not in stderr


# --- the CLI parsers ---------------------------------------------------------------------------

@FAST
@given(argv_lists)
def test_the_parser_accepts_or_refuses_in_one_line_and_passes_on_only_clean_text(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = _clean_args(build_parser().parse_args(argv))
        except SystemExit as e:
            assert e.code in (0, 2)
            if e.code == 2:
                assert_one_line_error(err.getvalue())
            return
    for key, value in vars(args).items():
        if isinstance(value, str) and key != "file":
            assert clean(value) == value
            value.encode("utf-8")


@FAST
@given(st.binary(max_size=400))
def test_read_jsonl_on_any_bytes_yields_clean_objects_or_one_line_naming_the_file(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "input.jsonl"
        path.write_bytes(data)
        try:
            objs = list(read_jsonl(str(path), "text"))
        except BadInputError as e:
            assert str(e).startswith(f"{path}:") and "\n" not in str(e)
            return
    for obj in objs:
        assert isinstance(obj["text"], str) and clean(obj["text"]) == obj["text"]
        json.dumps(obj, ensure_ascii=False).encode("utf-8")


@FAST
@given(st.lists(st.one_of(any_text.map(lambda t: json.dumps({"text": t})),  # JSON may spell \ud800
                          any_text, st.sampled_from(['{"text": 1}', "[]", "[" * 5000, '{"query": "x"}'])),
                max_size=6))
def test_read_jsonl_on_any_lines(lines):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "input.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        try:
            objs = list(read_jsonl(str(path), "text"))
        except BadInputError as e:
            assert f"{path}:" in str(e) and "\n" not in str(e)
            return
    assert all(clean(o["text"]) == o["text"] for o in objs)


@pytest.fixture
def cli_env(monkeypatch, cli_in_process, base_deps):
    """main() in-process over the shared offline deps (built once), with its own data dir."""
    monkeypatch.setattr("mlsd_bot.chat.build_deps",
                        lambda settings, voice=None: dataclasses.replace(base_deps, clock=FakeClock()))
    monkeypatch.setattr("mlsd_bot.signals.SignalDetector", lambda *a, **k: base_deps.detector)
    return cli_in_process


def test_chat_reads_bytes_that_are_not_utf8_from_the_terminal(cli_env, monkeypatch):
    from mlsd_bot.sessions import SessionStore

    typed = b"We expect \xff\xfe 300M users \x1b[2J and p99 200 ms\n\n/end\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(typed), encoding="utf-8"))  # strict, as a terminal
    code, out, err = run_cli(["chat", "--case", "news_feed"])
    assert code == 0, err
    assert "Interview report" in out
    store = SessionStore(cli_env / "data" / "sessions.sqlite3")
    said = [t.text for t in store.load(store.list()[0].id).turns if t.role == "candidate"]
    assert said == ["We expect \ufffd\ufffd 300M users [2J and p99 200 ms", "/end"]


@SLOW
@given(any_text, st.sampled_from([[], ["--phase", "data"], ["--phase", "\ud800"], ["--case", "\x1b"]]))
def test_detect_on_any_text_prints_json_or_one_line(cli_env, text, extra):
    code, out, err = run_cli(["detect", text, "--json", *extra])
    event(f"exit code {code}")
    if code == 0:
        assert set(json.loads(out)["signals"]) <= set(SIGNALS)
    else:
        assert code in (1, 2) and out == ""
        assert_one_line_error(err)


@SLOW
@given(st.lists(message, max_size=12), st.sampled_from(["news_feed", "harmful_content", "no_such_case", "\ud800"]))
def test_replay_of_any_messages_prints_turns_then_the_report_or_one_line(cli_env, messages, case):
    path = cli_env / "script.jsonl"
    path.write_text("\n".join(json.dumps({"text": m}) for m in messages), encoding="utf-8")
    code, out, err = run_cli(["replay", str(path), "--case", case, "--json"])
    event(f"exit code {code}")
    if code != 0:
        assert code == 1 and out == ""
        assert_one_line_error(err)
        return
    lines = [json.loads(line) for line in out.splitlines()]
    turns, report = lines[:-1], lines[-1]
    assert report["type"] == "report" and report["case"] == case
    assert [t["turn"] for t in turns] == list(range(1, len(turns) + 1))
    phases = [PHASES.index(t["phase"]) for t in turns]
    assert phases == sorted(phases)  # never backwards
    assert turns[-1]["action"] == "close"
    # one turn for the opening and one per message up to the close: none lost, none extra
    sent = [clean(m).strip() for m in messages]
    assert len(turns) - 1 <= len(sent) + 1


# --- the state machine ---------------------------------------------------------------------------

def check_invariants(iv: Interview, accepted: list[str], phase_before: int) -> int:
    state = iv.state
    roles = [t.role for t in state.turns]
    assert roles == ["interviewer"] + ["candidate", "interviewer"] * len(accepted)  # alternate, none lost
    assert [t.n for t in state.turns] == list(range(1, len(state.turns) + 1))
    assert [t.text for t in state.candidate_turns()] == accepted  # in order, as cleaned
    phase = PHASES.index(state.phase)
    assert phase >= phase_before
    turn_phases = [PHASES.index(t.phase) for t in state.turns]
    assert turn_phases == sorted(turn_phases)
    again = InterviewState.model_validate_json(state.model_dump_json())
    assert again == state
    json.dumps(iv.turn_json(iv.last_turn), ensure_ascii=False).encode("utf-8")
    return phase


@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(message, st.floats(0, 900)), max_size=14),
       st.sampled_from(["news_feed", "visual_search", "ad_click_prediction"]),
       st.sampled_from(["mid", "senior", "staff"]))
def test_any_command_sequence_keeps_the_interview_consistent(base_deps, steps, case, level):
    clock = FakeClock()
    iv = Interview.new(dataclasses.replace(base_deps, clock=clock), case, level=level)
    list(iv.open())
    accepted: list[str] = []
    phase = check_invariants(iv, accepted, 0)
    for text, wait in steps:
        clock.advance(wait)
        before = iv.state.model_dump_json()
        try:
            reply = "".join(iv.send(text))
        except MlsdError:
            event("refused")
            cleaned = clean(text).strip()
            assert iv.finished or not cleaned or len(cleaned) > MAX_MESSAGE_CHARS
            assert iv.state.model_dump_json() == before  # a refused message leaves no trace
            continue
        event("accepted")
        accepted.append(clean(text).strip())
        assert reply.strip() and clean(reply) == reply
        phase = check_invariants(iv, accepted, phase)
    if not iv.finished:
        "".join(iv.end())
        accepted.append("/end")
    assert iv.finished and iv.last_turn.action == "close"
    check_invariants(iv, accepted, phase)
    report = iv.report()
    json.loads(report.model_dump_json())
