"""The pitfall catalogue (mlsd_bot/data/pitfalls.yaml): ids, fields, cue gates and case ids.

The engine reads this file and the knowledge notes key their pushback bullets on
its ids, so the catalogue is checked as data: the fixed ids in their fixed order,
every field present and well-typed, every mistake exemplar passing its own cue
gate, and every case id one the product knows (today's notes or a coming case).
The notes' `### Pushback` bullets are checked against it: one generic counterpoint
per pitfall in its phase's framework note, one per pitfall x applicable case in
that case's phase section, each a quotable sentence kept whole inside one chunk.
"""

from __future__ import annotations

import re

import pytest
import yaml

from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.contract import PHASES, SIGNALS
from mlsd_bot.knowledge import chunk_note, load_notes

PITFALLS_FILE = PROJECT_ROOT / "mlsd_bot" / "data" / "pitfalls.yaml"
CASE_PITFALLS_DIR = PROJECT_ROOT / "mlsd_bot" / "data" / "case_pitfalls"
CASE_NOTES = PROJECT_ROOT / "knowledge" / "case_studies"

# The catalogue's ids, in order, with their phase and signal (fixed: the engine and the notes key on them).
CATALOGUE = [
    ("engagement_without_guardrails", "clarify", "business_objective"),
    ("protected_attributes_as_features", "clarify", "privacy"),
    ("assume_labels_exist", "clarify", "labels"),
    ("no_scale_latency_questions", "clarify", "scale"),
    ("clicks_only_objective", "framing", "ml_objective"),
    ("pctr_only_ad_ranking", "framing", "ml_objective"),
    ("sent_not_accepted", "framing", "ml_objective"),
    ("random_split_on_time_data", "data", "sampling"),
    ("random_split_near_duplicates", "data", "sampling"),
    ("clicks_as_labels_no_position", "data", "labels"),
    ("every_non_click_negative", "data", "sampling"),
    ("no_point_in_time_join", "data", "features"),
    ("immature_labels", "data", "labels"),
    ("random_negatives_location_bound", "data", "sampling"),
    ("downsampling_breaks_calibration", "data", "imbalance"),
    ("selection_bias_blocked_outcomes", "data", "labels"),
    ("noisy_proxy_labels_as_truth", "data", "labels"),
    ("one_heavy_model_over_everything", "model", "multi_stage"),
    ("mse_for_classification", "model", "loss"),
    ("llm_everywhere", "model", "architecture"),
    ("softmax_multilabel", "model", "loss"),
    ("raw_watch_time_mse", "model", "loss"),
    ("id_only_embeddings_short_lived", "model", "features"),
    ("in_batch_negatives_no_logq", "model", "sampling"),
    ("cross_encoder_all_candidates", "model", "architecture"),
    ("class_weights_break_calibration", "model", "imbalance"),
    ("train_from_scratch_small_labels", "model", "architecture"),
    ("no_cold_start_path", "model", "architecture"),
    ("opaque_model_no_reason_codes", "model", "architecture"),
    ("accuracy_on_rare_positives", "evaluation", "offline_metrics"),
    ("accuracy_for_ranking", "evaluation", "offline_metrics"),
    ("ship_on_offline_metric", "evaluation", "ab_testing"),
    ("roc_auc_headline_extreme_imbalance", "evaluation", "offline_metrics"),
    ("user_level_ab_marketplace", "evaluation", "ab_testing"),
    ("peeking_early_stop", "evaluation", "ab_testing"),
    ("open_rate_metric", "evaluation", "online_metrics"),
    ("single_aggregate_no_slices", "evaluation", "offline_metrics"),
    ("models_compared_on_different_windows", "evaluation", "offline_metrics"),
    ("brute_force_similarity", "serving", "optimization"),
    ("nightly_batch_for_fresh_items", "serving", "serving"),
    ("query_encoder_swap_no_reindex", "serving", "serving"),
    ("rag_permissions_after_generation", "serving", "serving"),
    ("cached_lists_no_availability_check", "serving", "serving"),
    ("big_bang_rollout", "serving", "serving"),
    ("no_fallback_on_timeout", "serving", "serving"),
    ("train_serve_skew_separate_code", "serving", "serving"),
    ("train_once", "monitoring", "retraining"),
    ("ks_test_pvalues_big_n", "monitoring", "drift"),
    ("auto_retrain_on_user_reports_adversarial", "monitoring", "retraining"),
    ("no_exploration", "monitoring", "monitoring"),
    ("wait_for_labels_to_monitor", "monitoring", "monitoring"),
    ("static_threshold_seasonal_metric", "monitoring", "monitoring"),
    ("metric_drop_assumed_drift", "monitoring", "retraining"),
]
# Cases announced but without a note yet; a pitfall may already name them.
COMING_CASES = {"query_autocomplete", "notification_ranking", "short_video_feed", "llm_support_agent",
                "llm_serving_platform", "code_completion", "fake_account_detection", "demand_forecasting"}
FIELDS = {"id", "phase", "signal", "name", "cases", "fine_in", "cues", "mistake", "correct", "question"}
OPTIONAL = {"also_in"}  # other phases where the choice is commonly said


@pytest.fixture(scope="module")
def common() -> list[dict]:
    data = yaml.safe_load(PITFALLS_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, list) and all(isinstance(p, dict) for p in data)
    return data


@pytest.fixture(scope="module")
def case_specific() -> list[dict]:
    """Traps of one or a few cases (mlsd_bot/data/case_pitfalls/*.yaml): counterpoints only in their case notes."""
    data = [p for f in sorted(CASE_PITFALLS_DIR.glob("*.yaml")) for p in yaml.safe_load(f.read_text(encoding="utf-8"))]
    assert all(isinstance(p, dict) for p in data)
    return data


@pytest.fixture(scope="module")
def catalogue(common, case_specific) -> list[dict]:
    return common + case_specific


def _cues(pitfall: dict) -> list[re.Pattern]:
    return [re.compile(c, re.I) for c in pitfall["cues"]]


def test_ids_phases_and_signals_are_exactly_the_catalogue(common, case_specific) -> None:
    assert [(p["id"], p["phase"], p["signal"]) for p in common] == CATALOGUE
    ids = [p["id"] for p in common + case_specific]
    assert len(ids) == len(set(ids))
    assert {phase for _, phase, _ in CATALOGUE} == set(PHASES)
    assert {signal for *_, signal in CATALOGUE} <= set(SIGNALS)


def test_every_pitfall_has_exactly_the_fields_well_typed(catalogue) -> None:
    for p in catalogue:
        assert FIELDS <= set(p) <= FIELDS | OPTIONAL, p["id"]
        assert p["phase"] not in p.get("also_in", []) and set(p.get("also_in", [])) <= set(PHASES), p["id"]
        for key in ("name", "question"):
            assert isinstance(p[key], str) and p[key].strip(), (p["id"], key)
        for key in ("cases", "fine_in", "cues", "mistake", "correct"):
            assert isinstance(p[key], list) and all(isinstance(x, str) and x.strip() for x in p[key]), (p["id"], key)
        assert 1 <= len(p["cues"]) <= 4, p["id"]
        assert 8 <= len(p["mistake"]) <= 24 and 8 <= len(p["correct"]) <= 24, p["id"]
        assert len(set(p["mistake"] + p["correct"])) == len(p["mistake"]) + len(p["correct"]), p["id"]


def test_names_read_mid_sentence_and_questions_ask_without_praise(catalogue) -> None:
    for p in catalogue:
        assert not re.search(r"\b[A-Z][a-z]", p["name"]), p["name"]  # lowercase words; acronyms (ID, LLM) stay
        q = p["question"]
        assert q.endswith("?"), p["id"]
        assert not re.match(r"(good|great|nice|interesting|that's|thanks)\b", q, re.I), p["id"]
        assert not re.search(r"^use\b|\b(should|could|just|instead,?|try) use\b", q, re.I), p["id"]  # asks, never dictates


def test_every_cue_compiles_and_every_mistake_passes_its_gate(catalogue) -> None:
    for p in catalogue:
        cues = _cues(p)
        missed = [s for s in p["mistake"] if not any(c.search(s) for c in cues)]
        assert not missed, (p["id"], missed)


def test_the_gate_is_not_the_decision_many_look_alikes_pass_it_too(catalogue) -> None:
    """Correct look-alikes that match the cues are what the semantic part has to separate."""
    passing = sum(any(c.search(s) for c in _cues(p)) for p in catalogue for s in p["correct"])
    total = sum(len(p["correct"]) for p in catalogue)
    assert passing >= total // 2, (passing, total)


def test_every_case_id_is_known_and_cases_never_overlap_fine_in(catalogue) -> None:
    known = {path.stem for path in CASE_NOTES.glob("*.md")} | COMING_CASES
    for p in catalogue:
        assert p["cases"], p["id"]
        unknown = (set(p["cases"]) | set(p["fine_in"])) - known
        assert not unknown, (p["id"], unknown)
        assert len(set(p["cases"])) == len(p["cases"]) and len(set(p["fine_in"])) == len(p["fine_in"]), p["id"]
        assert not set(p["cases"]) & set(p["fine_in"]), p["id"]


# --- the pushback sentences in the knowledge notes -----------------------------------

@pytest.fixture(scope="module")
def notes():
    return load_notes(PROJECT_ROOT / "knowledge")


def test_every_pitfall_has_one_generic_counterpoint_in_its_phase_note(common, notes) -> None:
    framework = {n.phase: n for n in notes if n.kind == "framework"}
    for phase, note in framework.items():
        ids = [pid for pid, _, _ in note.pushback]
        assert sorted(ids) == sorted(p["id"] for p in common if p["phase"] == phase), note.source


def test_every_case_specific_pitfall_has_a_counterpoint_in_each_of_its_case_notes(case_specific, notes) -> None:
    """No generic fallback for a case's own trap: each of its cases states the counterpoint itself."""
    bullets = {(n.id, pid, phase) for n in notes if n.kind == "case" for pid, phase, _ in n.pushback}
    for p in case_specific:
        for case in p["cases"]:
            assert (case, p["id"], p["phase"]) in bullets, (case, p["id"])


def test_every_pitfall_and_applicable_case_has_one_counterpoint_in_that_phase(catalogue, notes) -> None:
    """Case notes hold a bullet only where a pitfall applies (its phase, one of its `cases`), at most one each.

    Where an applicable pitfall has no case bullet, the framework note's generic one serves
    (tests/test_policy.py checks every pitfall x applicable case resolves to a cited counterpoint)."""
    phase_of = {p["id"]: p["phase"] for p in catalogue}
    for note in (n for n in notes if n.kind == "case"):
        have = [(pid, phase) for pid, phase, _ in note.pushback]
        want = {(p["id"], p["phase"]) for p in catalogue if note.id in p["cases"]}
        assert len(have) == len(set(have)) and set(have) <= want, (note.source, set(have) - want)
        assert all(phase_of[pid] == phase for pid, phase in have)


def test_counterpoints_read_as_quotable_facts(notes) -> None:
    for note in notes:
        for pid, _, sentence in note.pushback:
            assert 20 <= len(sentence.split()) <= 45, (note.source, pid)
            assert sentence.endswith("."), (note.source, pid)
            assert not re.search(r"(strong|weak|good) candidate|candidates? (should|must|would)|\binterviewer", sentence, re.I), (note.source, pid)


def test_each_counterpoint_stays_whole_inside_one_chunk_of_its_phase(notes) -> None:
    """What retrieval cites must contain the whole sentence, so no bullet may straddle a chunk border."""
    for note in notes:
        chunks = [(c.phase, " ".join(c.text.split())) for c in chunk_note(note)]
        for pid, phase, sentence in note.pushback:
            assert any(p == phase and sentence in text for p, text in chunks), (note.source, pid)
