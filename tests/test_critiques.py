"""Critiques that are right: grounded in the knowledge base for every pitfall and case where it
applies, raised only on a mistake the candidate makes (not one they reject), never praise
first, never the same question twice; and the depth grader's levels."""

from __future__ import annotations

import pytest

from mlsd_bot.depth import DepthGrader
from mlsd_bot.interview import Interview
from mlsd_bot.mistakes import rejected


def test_every_pitfall_and_applicable_case_resolves_to_a_cited_counterpoint(base_deps):
    chunks = {c.citation: [] for c in base_deps.retriever.chunks}
    for c in base_deps.retriever.chunks:
        chunks[c.citation].append(" ".join(c.text.split()))
    pairs = 0
    for p in base_deps.pitfalls:
        for case in base_deps.cases:
            if not p.applies_to(case):
                continue
            push = base_deps.pushback.get((case, p.id)) or base_deps.pushback.get((None, p.id))
            assert push is not None, (p.id, case)
            assert any(" ".join(push.sentence.split()) in text for text in chunks[push.citation]), (p.id, case)
            if (case, p.id) in base_deps.pushback:  # a case's own counterpoint sits in that case's phase section
                assert push.citation == f"case_studies/{case}.md#{p.phase}"
            pairs += 1
    assert len(base_deps.pitfalls) >= 40 and pairs >= 300


@pytest.mark.parametrize("sentence, cue, is_rejected", [
    ("I'd split by time, not randomly, since random splits leak.", "randomly", True),
    ("Instead of accuracy I'd report PR-AUC.", "accuracy", True),
    ("Accuracy is meaningless at one fraud in a thousand.", "Accuracy", True),
    ("We can't score all of them, so retrieval narrows it first.", "score all", True),
    ("Rather than a random split, train on weeks 1-8.", "random split", True),
    ("I'd evaluate on accuracy over a held-out week.", "accuracy", False),
    ("We randomly split the logs 80/20.", "randomly split", False),
])
def test_negation_and_contrast_scope(sentence, cue, is_rejected):
    start = sentence.index(cue)
    assert rejected(sentence, start, start + len(cue)) is is_rejected


def _at(deps, case: str, phase_steps: int) -> Interview:
    iv = Interview.new(deps, case)
    list(iv.open())
    for _ in range(phase_steps):
        list(iv.send("/next"))
    return iv


@pytest.mark.parametrize("case, steps, mistake, correct", [
    ("fraud_detection", 4, "I'd evaluate the fraud model on accuracy over last month's transactions.",
     "Accuracy is useless at one fraud per thousand, so I'd report PR-AUC and recall at a fixed false-positive rate."),
    ("news_feed", 2, "I'd shuffle all the impressions and do a random 80/20 train/test split.",
     "I'd split by time, not randomly: train on weeks one to eight and test on week nine, since random splits leak."),
])
def test_a_mistake_is_challenged_and_its_rejection_is_not(deps, case, steps, mistake, correct):
    iv = _at(deps, case, steps)
    list(iv.send(mistake))
    t = iv.turn_json(iv.last_turn)
    assert t["action"] == "critique" and t["citations"]
    assert not t["text"].lower().startswith(("good", "great", "nice", "thanks"))  # no praise first
    name = next(deps.pitfalls[i].name for i in range(len(deps.pitfalls))
                if deps.pitfalls[i].id in iv.state.mistakes)
    assert name in t["text"]
    iv2 = _at(deps, case, steps)
    list(iv2.send(correct))
    assert iv2.turn_json(iv2.last_turn)["action"] != "critique"
    assert not iv2.state.mistakes


@pytest.mark.parametrize("statement, credited", [
    ("For evaluation, the fraud model gets judged on accuracy over last month's transactions.", False),
    ("For evaluation, the fraud model gets judged on PR-AUC and recall at a fixed false-positive rate "
     "over last month's transactions.", True),
])
def test_a_mistaken_statement_beside_a_question_earns_no_credit(deps, statement, credited):
    iv = _at(deps, "fraud_detection", 4)
    list(iv.send("How many transactions per second do we see at peak? " + statement))
    assert iv.turn_json(iv.last_turn)["action"] == "answer"  # the question is answered either way
    assert ("offline_metrics" in iv.state.covered) is credited
    assert set(iv.state.covered) <= {"offline_metrics"}  # and the mistake is not credited as anything else


def test_a_choice_said_in_a_phase_where_it_is_commonly_discussed_is_judged_there(deps, monkeypatch):
    """`also_in`: a random split said while discussing evaluation is heard as in-phase; in serving it is not."""
    import copy
    import dataclasses

    import mlsd_bot.mistakes as mistakes

    monkeypatch.setattr(mistakes, "OFF_PHASE_FLOOR", 1.01)  # out of its phases nothing is caught at all
    said = ["I'd shuffle all the impressions and do a random 80/20 train/test split."]
    found = lambda sp, phase: [s.pitfall.id for s in sp.spot(said, "news_feed", phase)]
    assert "random_split_on_time_data" in found(deps.spotter, "data")
    assert "random_split_on_time_data" not in found(deps.spotter, "evaluation")
    spotter = copy.copy(deps.spotter)
    spotter.pitfalls = [dataclasses.replace(p, also_in=frozenset({"evaluation"}))
                        if p.id == "random_split_on_time_data" else p for p in deps.spotter.pitfalls]
    assert "random_split_on_time_data" in found(spotter, "evaluation")
    assert "random_split_on_time_data" not in found(spotter, "serving")


def test_a_doubt_stands_in_one_sentence_and_nearer_than_every_other_pitfall(deps, monkeypatch):
    """With the doubt bar at its loosest, doubts still never come from the joined-up message, and a lead no
    pitfall can have leaves none at all."""
    import mlsd_bot.mistakes as mistakes

    monkeypatch.setattr(mistakes, "OFF_PHASE_FLOOR", 1.01)
    monkeypatch.setattr(mistakes, "DOUBT_FLOOR", -1.0)
    monkeypatch.setattr(mistakes, "DOUBT_MARGIN", -2.0)
    monkeypatch.setattr(mistakes, "DOUBT_LEAD", -2.0)
    said = ["We'd shuffle the whole log at random.", "Then cut it 80/20 into train and test sets."]
    doubts = [s for s in deps.spotter.spot(said, "news_feed", "framing") if not s.sure]
    assert doubts and all(s.sentence in said for s in doubts)
    monkeypatch.setattr(mistakes, "DOUBT_LEAD", 2.0)
    assert not [s for s in deps.spotter.spot(said, "news_feed", "framing") if not s.sure]


def test_a_doubt_is_pushed_back_on_but_charged_only_when_repeated(deps, monkeypatch):
    """A data-phase mistake heard during framing, at the looser bar: asked about, never charged unless confirmed."""
    import mlsd_bot.mistakes as mistakes
    from mlsd_bot.report import depths, phase_points

    monkeypatch.setattr(mistakes, "OFF_PHASE_FLOOR", 1.01)  # out of its phase only the doubt bar is left
    split = "We'd shuffle the whole log and cut it 80/20 at random into train and test."
    outcome = {}
    for label, reply in (("dropped", "Fair point, I'd split by time instead: train on weeks one to eight, test on nine."),
                         ("repeated", "I'd still shuffle the whole log and cut it 80/20 at random, the data is huge.")):
        iv = _at(deps, "news_feed", 1)
        list(iv.send(split))
        t = iv.turn_json(iv.last_turn)
        assert t["action"] == "critique" and iv.state.mistakes["random_split_on_time_data"].doubt
        # worded as a check of what was meant, not as a verdict
        assert any(t["text"].startswith(o.split('"')[0]) for o in deps.prompts.options("critique_doubt"))
        list(iv.send(reply))
        outcome[label] = (iv.state.charged(), phase_points(iv.state, iv.case, "data", depths(iv.state))[1])
    assert outcome["dropped"] == ([], [])
    charged, deductions = outcome["repeated"]
    assert [m.pitfall for m in charged] == ["random_split_on_time_data"] and not charged[0].fixed and deductions


def test_a_fixed_mistake_recovers_part_of_the_grade(deps):
    from mlsd_bot.report import depths, phase_points

    wrong = "I'd evaluate the fraud model on accuracy over last month's transactions."
    fix = "You're right, accuracy hides the rare class; I'd report PR-AUC and recall at a 0.1% false-positive rate."
    points = {}
    for label, messages in (("fixed", [wrong, fix]), ("unfixed", [wrong, "I'd keep accuracy, it's what people know."])):
        iv = _at(deps, "fraud_detection", 4)
        for m in messages:
            list(iv.send(m))
        m = iv.state.mistakes["accuracy_on_rare_positives"]
        assert m.fixed is (label == "fixed")
        points[label], deductions = phase_points(iv.state, iv.case, "evaluation", depths(iv.state))
        assert deductions
    assert points["fixed"] > points["unfixed"]


@pytest.mark.parametrize("sentence, signal, depth", [
    ("Maybe something with metrics?", "offline_metrics", 0),
    ("We'd monitor drift.", "drift", 1),
    ("Offline metrics: AUC, precision, recall, NDCG.", "offline_metrics", 1),
    ("I'd use PR-AUC on held-out weeks.", "offline_metrics", 2),
    ("Assume 300 million daily users.", "scale", 2),
    ("I'd use PR-AUC rather than ROC-AUC, because at 1 in 1,000 ROC-AUC looks fine while most alerts are false.",
     "offline_metrics", 3),
    ("Retrain weekly, since fraud patterns shift within a month.", "retraining", 3),
])
def test_depth_levels(sentence, signal, depth):
    assert DepthGrader().grade(sentence, signal).depth == depth
