"""State (JSON round trip, resume), saved sessions, prompt templates, and the report's shape and escaping."""

from __future__ import annotations

import json

import jinja2
import jinja2.meta
import pytest
from conftest import FakeClock
import yaml
from pydantic import ValidationError

from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.contract import PHASE_TITLES, PHASES, SIGNALS, phase_signals
from mlsd_bot.errors import SessionNotFoundError
from mlsd_bot.interview import Interview
from mlsd_bot.prompts import Prompts
from mlsd_bot.report import Report, rubric, to_html, to_markdown, verdict
from mlsd_bot.sessions import SessionStore
from mlsd_bot.state import InterviewState

PROMPTS_DIR = PROJECT_ROOT / "prompts"
VERDICT_IDS = [v for _, v in rubric()["verdicts"]]




@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts(PROMPTS_DIR)


def say(iv: Interview, text: str, clock: FakeClock | None = None) -> dict:
    if clock:
        clock.advance(30)
    stream = iv.send(text) if iv.state.turns else iv.open()
    "".join(stream)
    return iv.turn_json(iv.last_turn)


MIDWAY = [
    "The business wants guests to book more; success is bookings per search session.",
    "Assume 7 million active listings and 60 million monthly guests; results within 150 ms.",
    "/hint",
    "/next",
    "Given the listing a guest is viewing, rank other listings by how likely the guest is to book them.",
    "/next",
    "Training data comes from search and click sessions; I'd use listing embeddings and price features.",
]
NEXT = ["I'd do a random 80/20 split of the sessions.", "/hint", "Not sure about the rest.", "/next",
        "A two-tower model trained with a contrastive loss, then a gradient boosted re-ranker.", "/end"]


# --- state: JSON round trip and resume -----------------------------------------------------

def test_state_json_round_trip_mid_interview_resumes_identically(deps, clock):
    original = Interview.new(deps, "similar_listings")
    say(original, "")
    for text in MIDWAY:
        say(original, text, clock)
    assert original.state.covered and original.state.hints and original.state.asked and not original.finished

    raw = original.state.model_dump_json()
    restored_state = InterviewState.model_validate_json(raw)
    assert restored_state == original.state
    assert json.loads(restored_state.model_dump_json()) == json.loads(raw)
    resumed = Interview(restored_state, deps)

    # From here both make the same decisions, word for word, and end in the same state.
    for text in NEXT:
        a, b = say(original, text, clock), say(resumed, text)
        assert a == b
    assert original.finished and resumed.finished
    assert original.state.model_dump() == resumed.state.model_dump()
    assert original.report() == resumed.report()
    actions = {t.action for t in original.state.interviewer_turns()}
    assert {"hint", "advance", "close"} <= actions  # the resumed part did exercise the policy


def test_state_is_saved_before_and_after_each_reply(deps, clock):
    snapshots: list[str] = []
    iv = Interview.new(deps, "news_feed", on_change=lambda st: snapshots.append(st.model_dump_json()))
    say(iv, "")
    stream = iv.send("We have roughly 300 million daily users.")
    decided = InterviewState.model_validate_json(snapshots[-1])
    # Saved once the move is decided, before a single word is spoken: a crash now loses nothing.
    assert decided.turns[-1].role == "interviewer" and decided.turns[-2].role == "candidate"
    assert "scale" in decided.covered
    "".join(stream)
    assert len(snapshots) == 4  # open: decided + spoken; message: decided + spoken
    assert InterviewState.model_validate_json(snapshots[-1]) == iv.state


def test_state_rejects_bad_json():
    with pytest.raises(ValidationError):
        InterviewState.model_validate_json('{"case_id": "news_feed", "level": "intern"}')
    with pytest.raises(ValidationError):
        InterviewState.model_validate_json('{"case_id": "news_feed", "budget_minutes": 2}')


# --- saved sessions -------------------------------------------------------------------------

def _interview(deps, clock, case: str, messages: list[str]) -> Interview:
    iv = Interview.new(deps, case)
    say(iv, "")
    for text in messages:
        say(iv, text, clock)
    return iv


def test_session_store_round_trip(tmp_path, deps, clock):
    store_clock = FakeClock(5_000.0)
    store = SessionStore(tmp_path / "db" / "sessions.sqlite3", clock=store_clock)
    first = _interview(deps, clock, "news_feed", ["Assume 100 million daily users."])
    done = _interview(deps, clock, "harmful_content", ["We must respect GDPR.", "/end"])
    third = _interview(deps, clock, "similar_listings", ["/next"])
    report = done.report()

    store.save(first.state)
    store_clock.advance(1)
    store.save(done.state, report)
    store_clock.advance(1)
    store.save(third.state)

    for iv in (first, done, third):
        assert store.load(iv.state.session_id) == iv.state
    assert store.report(done.state.session_id) == report
    assert store.report(first.state.session_id) is None

    listed = store.list()
    assert [s.id for s in listed] == [third.state.session_id, done.state.session_id, first.state.session_id]
    by_id = {s.id: s for s in listed}
    d = by_id[done.state.session_id]
    assert d.finished and d.case_id == "harmful_content" and d.score == report.overall.score
    assert d.phase_scores == {p: pr.score for p, pr in report.phases.items()}
    f = by_id[first.state.session_id]
    assert not f.finished and f.score is None and f.phase_scores == {} and f.phase == "clarify"
    assert by_id[third.state.session_id].phase == "framing"
    assert store.latest_unfinished().id == third.state.session_id
    assert len(store.list(limit=2)) == 2

    # Continue the first interview and save it again: it becomes the latest, nothing is duplicated.
    say(first, "Latency must stay under 100 ms.", clock)
    store_clock.advance(1)
    store.save(first.state)
    assert store.latest_unfinished().id == first.state.session_id
    assert store.load(first.state.session_id) == first.state
    assert len(store.list()) == 3

    # Re-saving a finished interview without a report keeps the stored report and score.
    store_clock.advance(1)
    store.save(done.state)
    assert store.report(done.state.session_id) == report
    assert {s.id: s.score for s in store.list()}[done.state.session_id] == report.overall.score

    # A second store on the same file (another process or thread) sees the same data.
    again = SessionStore(tmp_path / "db" / "sessions.sqlite3")
    assert again.load(third.state.session_id) == third.state

    with pytest.raises(SessionNotFoundError, match="nosuchsession"):
        store.load("nosuchsession")
    with pytest.raises(SessionNotFoundError):
        store.report("nosuchsession")


def test_latest_unfinished_is_none_when_all_are_done(tmp_path, deps, clock):
    store = SessionStore(tmp_path / "s.sqlite3", clock=FakeClock())
    assert store.list() == [] and store.latest_unfinished() is None
    iv = _interview(deps, clock, "news_feed", ["/end"])
    store.save(iv.state, iv.report())
    assert store.latest_unfinished() is None


# --- prompt templates ------------------------------------------------------------------------

# The variables the engine passes to each offline slot, with plausible values.
PLAUSIBLE = {
    "problem": "Design the ranking of a news feed for a large social network.",
    "labels": "scale and latency",
    "phase_title": PHASE_TITLES["data"],
    "ack": "Good - that covers scale.",
    "question": "What latency budget do we have?",
    "quote": "I'd evaluate on accuracy",
    "choice": "accuracy as the headline metric",
    "term": "HNSW",
    "facts": "About 2,000 transactions per second at peak.",
    "go_on": "Go on.",
    "fact": "Per class: PR-AUC, and recall at the precision required for review.",
    "hint": "think about what the product already logs.",
    "summary": "Your overall score is 42/100 (lean no hire); the full report follows.",
    "score": 42,
    "verdict": "lean no hire",
}
SLOT_VARS: dict[str, set[str]] = {
    "open": {"problem"},
    "ack": set(),
    "transition": {"phase_title"},
    "transition_time": {"phase_title"},
    "follow_along": {"phase_title"},
    **{f"phase_open.{p}": set() for p in PHASES},
    "follow_up": {"ack", "question"},
    "critique": {"quote", "choice", "fact", "question"},
    "critique_doubt": {"quote", "choice", "fact", "question"},
    "probe": {"question"},
    "probe_question": {"term"},
    "answer": {"facts", "go_on"},
    "go_on.clarify": set(),
    "go_on.other": set(),
    "answer_assume": set(),
    "repeat": {"question"},
    "repeat_problem": {"problem"},
    "dont_know_move_on": set(),
    "fragment": set(),
    "redirect": {"question"},
    "redirect_injection": {"question"},
    "unknown_command": {"question"},
    "already_moved": {"phase_title"},
    "hint": {"hint"},
    "hint_none": set(),
    "close": {"summary"},
    "close_summary": {"score", "verdict"},
    "fallback_notice": set(),
}


def _slots(tree: dict, prefix: str = "") -> dict[str, list[str]]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_slots(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


OFFLINE = _slots(yaml.safe_load((PROMPTS_DIR / "offline.yaml").read_text(encoding="utf-8")))


def test_every_offline_slot_is_known_and_every_phase_can_be_opened():
    assert set(OFFLINE) <= set(SLOT_VARS), f"slots without a test: {set(OFFLINE) - set(SLOT_VARS)}"
    for phase in PHASES[1:]:  # advance() opens every phase after clarify
        assert f"phase_open.{phase}" in OFFLINE
    for slot, variants in OFFLINE.items():
        assert isinstance(variants, list) and variants, slot
        assert all(isinstance(v, str) and v.strip() for v in variants), slot


@pytest.mark.parametrize("slot", sorted(OFFLINE))
def test_every_variant_of_every_slot_renders(prompts, slot):
    env = jinja2.Environment()
    wanted = SLOT_VARS[slot]
    variables = {k: PLAUSIBLE[k] for k in wanted}
    variants = _slots(prompts.offline)[slot]  # the same file contents the Prompts object renders from
    for template in variants:
        used = jinja2.meta.find_undeclared_variables(env.parse(template))
        assert used <= wanted, f"{slot}: {template!r} uses {used - wanted}, which the engine does not pass"
        text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(**variables)
        assert text.strip() and "{{" not in text and "{%" not in text
        for name in used:  # what the template asks for shows up in what the candidate reads
            assert str(variables[name]).lower() in text.lower(), (slot, name)
    # through the Prompts API, every variant is reachable by some seed, and a seed always picks the same one
    seen = {prompts.say(slot, f"s{i}", **variables) for i in range(60)}
    assert len(seen) == len(set(variants))
    assert prompts.say(slot, "same-seed", **variables) == prompts.say(slot, "same-seed", **variables)


def test_missing_variable_raises(prompts):
    with pytest.raises(jinja2.UndefinedError):
        prompts.say("open", "seed")
    with pytest.raises(jinja2.UndefinedError):
        prompts.say("critique", "seed", quote="accuracy", choice="accuracy", question="Why?")  # no fact
    with pytest.raises(jinja2.UndefinedError):
        prompts.say("close_summary", "seed", score=10)
    with pytest.raises(jinja2.UndefinedError):
        prompts.llm("system.j2", level="senior")
    with pytest.raises(jinja2.UndefinedError):
        prompts.llm("turn.j2", **{k: v for k, v in TURN_VARS.items() if k != "draft"})
    with pytest.raises(jinja2.UndefinedError):
        prompts.llm("summary.j2")


def test_say_unused_never_repeats_and_runs_out(prompts):
    used: list[str] = []
    for i in range(len(prompts.offline["probe_question"])):
        q = prompts.say_unused("probe_question", f"seed{i}", used, term="HNSW")
        assert q is not None and q not in used and "HNSW" in q
        used.append(q)
    assert prompts.say_unused("probe_question", "seed-last", used, term="HNSW") is None


QUESTIONS = yaml.safe_load((PROMPTS_DIR / "questions.yaml").read_text(encoding="utf-8"))


def test_questions_cover_all_25_signals_with_every_kind(prompts):
    assert len(SIGNALS) == 25
    assert set(QUESTIONS) == set(SIGNALS)
    for signal in SIGNALS:
        for kind in ("ask", "deep", "hint"):
            options = QUESTIONS[signal].get(kind)
            assert isinstance(options, list) and options, (signal, kind)
            for text in options:
                assert isinstance(text, str) and len(text.split()) >= 4 and "{{" not in text, (signal, kind)
                if kind != "hint":  # a question, or an imperative like "Walk me through ..."
                    assert text.rstrip()[-1] in "?.", (signal, kind, text)
            assert prompts.question(signal, kind, "seed") in options
    all_asks = [q for s in SIGNALS for q in QUESTIONS[s]["ask"] + QUESTIONS[s]["deep"]]
    assert len(all_asks) == len(set(all_asks)), "two signals share a question"


TURN_VARS = dict(phase="evaluation", phase_title=PHASE_TITLES["evaluation"], action="critique", topic="offline_metrics",
                 event="answer", candidate_question="",
                 topic_label="Offline metrics", topic_description="Precision/recall, PR-AUC, NDCG on held-out data.",
                 facts=["Per class: PR-AUC, and recall at the precision required for review."],
                 draft="On accuracy as the metric: it hides rare positives. What would you report instead?",
                 minutes_left=17, next_phase_title="")
LLM_VARS = {
    "system.j2": dict(level="staff", case_title="Harmful content detection",
                      problem="Detect harmful posts on a social network.", phases=list(PHASES)),
    "turn.j2": TURN_VARS,
    "summary.j2": dict(turns=[dict(role="candidate", phase="clarify", text="We have 2B users."),
                              dict(role="interviewer", phase="clarify", text="What latency budget?")]),
    "detect.j2": dict(phase="clarify", signals=[("scale", "users, QPS, corpus size"), ("privacy", "personal data")],
                      suggested=["scale"], message="Half a billion people use it daily."),
}


def test_every_llm_template_renders(prompts):
    env = jinja2.Environment()
    files = sorted(p.name for p in (PROMPTS_DIR / "llm").glob("*.j2"))
    assert files and set(files) == set(LLM_VARS), "a template without a test, or a test without a template"
    for name in files:
        used = jinja2.meta.find_undeclared_variables(env.parse((PROMPTS_DIR / "llm" / name).read_text()))
        assert used == set(LLM_VARS[name]), (name, used)
        text = prompts.llm(name, **LLM_VARS[name])
        assert text and "{{" not in text and "{%" not in text

    system = prompts.llm("system.j2", **LLM_VARS["system.j2"])
    assert "staff" in system and "Harmful content detection" in system and ", ".join(PHASES) in system
    turn = prompts.llm("turn.j2", **TURN_VARS)
    assert "Action for this turn: critique." in turn and "Topic: Offline metrics" in turn
    assert TURN_VARS["facts"][0] in turn and TURN_VARS["draft"] in turn and "17 minutes" in turn
    assert "move the interview on" not in turn
    bare = prompts.llm("turn.j2", **{**TURN_VARS, "topic": None, "facts": [], "next_phase_title": "Deployment and serving"})
    assert "Topic:" not in bare and "Facts" not in bare and "move the interview on to: Deployment and serving" in bare
    summary = prompts.llm("summary.j2", **LLM_VARS["summary.j2"])
    assert "- candidate (clarify): We have 2B users." in summary
    detect = prompts.llm("detect.j2", **LLM_VARS["detect.j2"])
    assert "- privacy: personal data" in detect and "suggested: scale." in detect
    assert "<message>\nHalf a billion people use it daily.\n</message>" in detect
    assert "suggested: none." in prompts.llm("detect.j2", **{**LLM_VARS["detect.j2"], "suggested": []})


# --- the report ------------------------------------------------------------------------------

def check_report_json(data: dict, case: str) -> None:
    """The contract's report shape, checked on plain JSON."""
    assert data["type"] == "report" and data["case"] == case
    o = data["overall"]
    assert set(o) == {"score", "verdict"}
    assert isinstance(o["score"], int) and 0 <= o["score"] <= 100
    assert o["verdict"] in VERDICT_IDS and o["verdict"] == verdict(o["score"])
    assert list(data["phases"]) == list(PHASES)
    for phase, pr in data["phases"].items():
        assert isinstance(pr["score"], int) and 0 <= pr["score"] <= 4
        assert sorted(pr["covered"] + pr["missed"]) == sorted(phase_signals(phase))
        assert not set(pr["covered"]) & set(pr["missed"])
        assert isinstance(pr["feedback"], str) and pr["feedback"]
    sig = data["signals"]
    assert sorted(sig["covered"] + sig["missed"]) == sorted(SIGNALS)
    assert set(sig["covered"]) == {s for pr in data["phases"].values() for s in pr["covered"]}


def test_report_json_matches_the_contract(deps, clock):
    iv = _interview(deps, clock, "similar_listings", MIDWAY + NEXT)
    report = iv.report()
    data = json.loads(json.dumps(report.model_dump(mode="json")))
    check_report_json(data, "similar_listings")
    assert set(data["signals"]["covered"]) == set(iv.state.covered)
    assert Report.model_validate(data) == report
    # the scores follow the coverage: a phase with nothing covered cannot score above a complete one
    full = [p for p, pr in report.phases.items() if not pr.missed]
    empty = [p for p, pr in report.phases.items() if not pr.covered]
    assert all(report.phases[e].score == 0 for e in empty)
    assert all(report.phases[f].score >= report.phases[e].score for f in full for e in empty)


@pytest.mark.parametrize("bad", [
    {"overall": {"score": 101, "verdict": "hire"}},
    {"overall": {"score": 50, "verdict": "maybe"}},
    {"phases": {"clarify": {"score": 5, "covered": [], "missed": [], "feedback": ""}}},
])
def test_report_model_rejects_out_of_contract_values(deps, clock, bad):
    iv = _interview(deps, clock, "news_feed", ["/end"])
    data = iv.report().model_dump(mode="json")
    data.update(bad)
    with pytest.raises(ValidationError):
        Report.model_validate(data)


def test_candidate_text_is_escaped_in_markdown_and_html(deps, clock):
    evil = "We expect 300 million daily users <script>alert('pwned')</script> | **bold** at peak."
    iv = _interview(deps, clock, "news_feed", [evil, "/end"])
    report = iv.report()
    quote = report.phases["clarify"].quotes["scale"]
    assert "<script>" in quote  # premise: the candidate's words are quoted in the report

    page = to_html(report)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert page.startswith("<!doctype html>") and "<svg" in page

    md = to_markdown(report)
    assert "<script" not in md.lower()
    assert "&lt;script&gt;" in md
    assert "\\|" in md and "\\*\\*bold\\*\\*" in md  # no table-breaking pipe, no markup from the candidate
    # the JSON report keeps the candidate's words as typed (JSON needs no escaping)
    assert "<script>" in json.dumps(report.model_dump(mode="json"))
