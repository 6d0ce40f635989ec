"""The public contract (../shared/CONTRACT.md) as code: phases, signals, cases, verdicts.

Outside evaluation scripts depend on these ids: extend, never rename.
"""

from __future__ import annotations

from typing import Literal

PHASES: tuple[str, ...] = ("clarify", "framing", "data", "model", "evaluation", "serving", "monitoring")

PHASE_TITLES: dict[str, str] = {
    "clarify": "Clarifying requirements",
    "framing": "Framing the problem as an ML task",
    "data": "Data preparation",
    "model": "Model development",
    "evaluation": "Evaluation, offline and online",
    "serving": "Deployment and serving",
    "monitoring": "Monitoring, drift and retraining",
}

# Signal -> phase, in contract order. Within a phase the order is the interviewer's
# priority for follow-ups (clarify asks scale/latency, labels, privacy first).
SIGNAL_PHASE: dict[str, str] = {
    "scale": "clarify", "latency": "clarify", "labels": "clarify", "privacy": "clarify",
    "business_objective": "clarify", "resources": "clarify",
    "ml_objective": "framing", "io_spec": "framing", "ml_category": "framing",
    "data_sources": "data", "features": "data", "sampling": "data", "imbalance": "data",
    "architecture": "model", "baseline": "model", "multi_stage": "model", "loss": "model",
    "offline_metrics": "evaluation", "online_metrics": "evaluation", "ab_testing": "evaluation",
    "serving": "serving", "optimization": "serving",
    "drift": "monitoring", "retraining": "monitoring", "monitoring": "monitoring",
}
SIGNALS: tuple[str, ...] = tuple(SIGNAL_PHASE)

CONTRACT_CASES: tuple[str, ...] = (
    "visual_search", "street_view_blurring", "video_search", "harmful_content",
    "video_recommendation", "event_recommendation", "ad_click_prediction",
    "similar_listings", "news_feed", "people_you_may_know",
)

Action = Literal["ask", "follow_up", "critique", "probe", "hint", "advance", "close", "answer", "repeat", "redirect"]
Verdict = Literal["strong_hire", "hire", "lean_hire", "lean_no_hire", "no_hire"]


def phase_signals(phase: str) -> list[str]:
    """The signals that belong to `phase`, in follow-up priority order."""
    return [s for s, p in SIGNAL_PHASE.items() if p == phase]


def next_phase(phase: str) -> str | None:
    """The phase after `phase`, or None after the last one."""
    i = PHASES.index(phase)
    return PHASES[i + 1] if i + 1 < len(PHASES) else None
