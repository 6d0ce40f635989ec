"""The case studies the interviewer can run, read from the case notes' front matter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .knowledge import load_notes


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    problem: str
    optional_signals: tuple[str, ...] = ()  # asked last, weigh half in the score


def load_cases(knowledge_dir: Path) -> list[Case]:
    """All cases, sorted by id (validates the notes as a side effect)."""
    notes = [n for n in load_notes(knowledge_dir) if n.kind == "case"]
    return sorted((Case(n.id, n.title, n.problem or "", n.optional_signals) for n in notes), key=lambda c: c.id)
