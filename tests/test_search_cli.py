"""The `mlsd-bot` command line: `cases --json`, `search --json`, `--file` batch mode and one-line errors.

Most runs call `mlsd_bot.cli.main` in this process (the same argument parsing, output
and exit codes, without a Python start per call); the tests marked `console script`
run the real installed `mlsd-bot` in a child process, with its own exit code and streams.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlsd_bot.cases import load_cases
from mlsd_bot.cli import main
from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.contract import CONTRACT_CASES, PHASES

MLSD_BOT = PROJECT_ROOT / ".venv" / "bin" / "mlsd-bot"
HIT_KEYS = {"id", "source", "case", "phase", "score", "text"}


@pytest.fixture
def console(real_index_settings, subprocess_env, tmp_path):
    """Run the real console script against the session's real index; returns CompletedProcess."""
    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        env = {"MLSD_DATA_DIR": str(real_index_settings.data_dir),
               "MLSD_KNOWLEDGE_DIR": str(real_index_settings.knowledge_dir), **env}
        return subprocess.run([str(MLSD_BOT), *map(str, args)], env=subprocess_env(**env), cwd=tmp_path,
                              capture_output=True, text=True, encoding="utf-8", timeout=300)

    return run


@pytest.fixture
def cli(real_index_settings, monkeypatch, capsys):
    """`mlsd-bot ARGS` in this process, against the session's real index; returns a CompletedProcess."""
    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        base = {"MLSD_DATA_DIR": str(real_index_settings.data_dir),
                "MLSD_KNOWLEDGE_DIR": str(real_index_settings.knowledge_dir), "MLSD_VOICE": "offline"}
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith(("MLSD_", "OPENAI_"))]:
                m.delenv(key)
            for key, value in {**base, **env}.items():
                m.setenv(key, str(value))
            capsys.readouterr()
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse
                code = e.code
            out = capsys.readouterr()
        return subprocess.CompletedProcess(["mlsd-bot", *args], code, out.out, out.err)

    return run


def _ok_json(proc: subprocess.CompletedProcess):
    """The JSON on stdout of a successful run (stderr must hold no traceback)."""
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def _ok_lines(proc: subprocess.CompletedProcess) -> list:
    """The JSON lines on stdout of a successful run."""
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _check_hits(hits: list, k: int, case: str | None = None, phase: str | None = None) -> None:
    """Shape per contract, best first, and every hit matches the filters."""
    assert isinstance(hits, list) and len(hits) == k
    assert len({h["id"] for h in hits}) == k
    for h in hits:
        assert set(h) == HIT_KEYS
        assert h["id"].startswith(h["source"] + "#") and h["text"].strip()
        assert h["phase"] in PHASES and isinstance(h["score"], float)
        assert h["case"] is None or isinstance(h["case"], str)
        assert h["case"] is None if h["source"].startswith("framework/") else h["case"] == Path(h["source"]).stem
        if case:
            assert h["case"] == case
        if phase:
            assert h["phase"] == phase
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


# --- cases ------------------------------------------------------------------------

def test_cases_json_lists_every_case_with_its_problem(cli, real_index_settings) -> None:
    cases = _ok_json(cli("cases", "--json"))
    assert all(set(c) == {"id", "title", "problem"} for c in cases)
    assert all(isinstance(c[k], str) and c[k].strip() for c in cases for k in ("id", "title", "problem"))
    expected = load_cases(real_index_settings.knowledge_dir)
    assert cases == [{"id": c.id, "title": c.title, "problem": c.problem} for c in expected]
    assert set(CONTRACT_CASES) <= {c["id"] for c in cases}


# --- search -----------------------------------------------------------------------

def test_search_json_shape_best_first_and_k(cli, console) -> None:
    query = "how to detect drift in feature distributions"
    default = _ok_json(console("search", query, "--json"))  # the console script, as users run it
    assert default == _ok_json(cli("search", query, "--json"))
    _check_hits(default, 5)
    top3 = _ok_json(cli("search", query, "-k", "3", "--json"))
    _check_hits(top3, 3)
    assert top3 == default[:3]
    assert any(h["phase"] == "monitoring" for h in default[:2])


def test_search_case_filter(cli) -> None:
    hits = _ok_json(cli("search", "negative sampling and hard negatives", "--case", "people_you_may_know", "-k", "8", "--json"))
    _check_hits(hits, 8, case="people_you_may_know")


def test_search_phase_filter(cli) -> None:
    hits = _ok_json(cli("search", "what to ask first", "--phase", "clarify", "-k", "8", "--json"))
    _check_hits(hits, 8, phase="clarify")
    assert any(h["case"] is None for h in hits) and any(h["case"] for h in hits)  # framework and case notes


def test_search_case_and_phase_together(cli) -> None:
    hits = _ok_json(cli("search", "metrics", "--case", "visual_search", "--phase", "evaluation", "-k", "2", "--json"))
    _check_hits(hits, 2, case="visual_search", phase="evaluation")


def test_search_file_batch_one_line_per_query_with_per_line_filters(cli, tmp_path: Path) -> None:
    lines = [
        {"query": "negative sampling for friend suggestions", "case": "people_you_may_know"},
        {"query": "int8 quantization and distillation", "phase": "serving"},
        {"query": "click model calibration", "case": "ad_click_prediction", "phase": "monitoring"},
        {"query": "how to detect drift in feature distributions"},
    ]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(x) for x in lines[:2]) + "\n\n" + "\n".join(json.dumps(x) for x in lines[2:]) + "\n")
    out = _ok_lines(cli("search", "--file", qfile, "-k", "4", "--json"))
    assert [o["query"] for o in out] == [x["query"] for x in lines]  # blank line skipped, order kept
    for item, o in zip(lines, out):
        assert set(o) == {"query", "hits"}
        _check_hits(o["hits"], 4, item.get("case"), item.get("phase"))
    single = _ok_json(cli("search", lines[3]["query"], "-k", "4", "--json"))
    assert out[3]["hits"] == single  # batch mode gives the same answer as one query


def test_search_file_uses_flags_as_defaults_for_lines_without_them(cli, tmp_path: Path) -> None:
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(json.dumps({"query": "features"}) + "\n" + json.dumps({"query": "features", "phase": "serving"}) + "\n")
    first, second = _ok_lines(cli("search", "--file", qfile, "--case", "news_feed", "--phase", "data", "-k", "3"))
    _check_hits(first["hits"], 3, case="news_feed", phase="data")
    _check_hits(second["hits"], 3, case="news_feed", phase="serving")


def test_search_builds_a_missing_index_first(cli, kb_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "fresh-data"
    hits = _ok_json(cli("search", "licence plates", "-k", "2", "--json", MLSD_DATA_DIR=data, MLSD_KNOWLEDGE_DIR=kb_dir))
    _check_hits(hits, 2)
    assert hits[0]["case"] == "toy_blur"
    assert (data / "chroma").is_dir()


# --- one-line errors --------------------------------------------------------------

def _bad_files(tmp_path: Path) -> dict[str, Path]:
    """Input files that are wrong in one way each."""
    files = {
        "bad_json": '{"query": "fine"}\n{"query": "unterminated\n',
        "no_query_field": '{"query": "fine"}\n{"text": "wrong field"}\n',
        "bad_case_line": '{"query": "fine", "case": "no_such_case"}\n',
        "bad_phase_line": '{"query": "fine", "phase": "deployment"}\n',
    }
    out = {}
    for name, text in files.items():
        out[name] = tmp_path / f"{name}.jsonl"
        out[name].write_text(text)
    return out


ERRORS = {
    "unknown_case": (["search", "x", "--case", "no_such_case", "--json"], 1, "unknown case 'no_such_case'"),
    "unknown_phase": (["search", "x", "--phase", "deployment", "--json"], 1, "unknown phase 'deployment'"),
    "missing_file": (["search", "--file", "{tmp}/absent.jsonl", "--json"], 1, "absent.jsonl: no such file"),
    "bad_json_line": (["search", "--file", "{bad_json}", "--json"], 1, "bad_json.jsonl:2: not valid JSON"),
    "line_without_query": (["search", "--file", "{no_query_field}", "--json"], 1,
                           "no_query_field.jsonl:2: each line needs a string field 'query'"),
    "bad_case_in_file": (["search", "--file", "{bad_case_line}", "--json"], 1, "unknown case 'no_such_case'"),
    "bad_phase_in_file": (["search", "--file", "{bad_phase_line}", "--json"], 1, "unknown phase 'deployment'"),
    "no_query": (["search", "--json"], 1, "give a QUERY or --file"),
    "query_and_file": (["search", "x", "--file", "{bad_json}", "--json"], 1, "give a QUERY or --file"),
    "k_zero": (["search", "x", "-k", "0", "--json"], 1, "-k must be at least 1"),
    "k_not_a_number": (["search", "x", "-k", "many", "--json"], 2, "invalid int value: 'many'"),
    "unknown_command": (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
}


CONSOLE_ERRORS = {"unknown_case", "bad_json_line", "k_not_a_number"}  # these through the real console script


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_are_one_line_on_stderr_and_exit_non_zero(cli, console, tmp_path: Path, name: str) -> None:
    args, code, message = ERRORS[name]
    paths = {k: str(v) for k, v in _bad_files(tmp_path).items()} | {"tmp": str(tmp_path)}
    run = console if name in CONSOLE_ERRORS else cli
    proc = run(*(a.format(**paths) for a in args))
    assert proc.returncode == code
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mlsd-bot: error: ") and message in lines[0]
    assert "Traceback" not in proc.stderr


def test_ingest_of_a_malformed_note_is_one_line_naming_the_file(console, kb_dir: Path, tmp_path: Path) -> None:
    (kb_dir / "case_studies" / "toy_feed.md").write_text("---\nid: toy_feed\n---\n")
    proc = console("ingest", MLSD_DATA_DIR=tmp_path / "d", MLSD_KNOWLEDGE_DIR=kb_dir)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "mlsd-bot: error: case_studies/toy_feed.md: front matter needs a non-empty 'title'"]


def test_search_keeps_serving_the_index_when_a_note_breaks(cli, tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(PROJECT_ROOT / "knowledge", kb)
    (kb / "case_studies" / "broken.md").write_text("no front matter here\n")
    proc = cli("search", "population stability index", "--phase", "monitoring", "-k", "3", "--json",
               MLSD_KNOWLEDGE_DIR=str(kb))
    hits = _ok_json(proc)
    _check_hits(hits, 3, phase="monitoring")
    warning = proc.stderr.strip()
    assert warning.count("\n") == 0 and "case_studies/broken.md" in warning and "previous index" in warning


def test_first_runs_started_together_share_one_build(real_index_settings, subprocess_env, tmp_path: Path) -> None:
    """Three `search` runs started at once on an empty data dir (an evaluation with two or more workers)
    all answer, and the index they leave is readable: the build is one writer's, the others wait for it."""
    env = subprocess_env(MLSD_DATA_DIR=str(tmp_path / "fresh"), MLSD_KNOWLEDGE_DIR=str(real_index_settings.knowledge_dir))
    run = [str(MLSD_BOT), "search", "position bias in clicks", "--json"]
    procs = [subprocess.Popen(run, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
    for out, err, code in results:
        assert code == 0, err
        assert json.loads(out)
    again = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout), again.stderr
