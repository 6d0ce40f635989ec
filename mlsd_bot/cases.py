"""The case studies the interviewer can run, read from the case notes' front matter."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .knowledge import Note, out_of_service, read_notes


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    problem: str
    optional_signals: tuple[str, ...] = ()  # asked last, weigh half in the score
    facts: tuple[tuple[str, str], ...] = ()  # (topic, fact): what the interviewer tells when asked
    source: str = ""  # the note, e.g. case_studies/news_feed.md


def cases_of(notes: list[Note]) -> list[Case]:
    """The cases among already-loaded notes, sorted by id."""
    return sorted((Case(n.id, n.title, n.problem or "", n.optional_signals, n.facts, n.source)
                   for n in notes if n.kind == "case"),
                  key=lambda c: c.id)


def load_cases(knowledge_dir: Path) -> list[Case]:
    """All cases whose note is valid, sorted by id; each broken note is a one-line warning on stderr."""
    notes, broken = read_notes(knowledge_dir)
    for error in broken:
        print(f"mlsd-bot: warning: {out_of_service(error)}", file=sys.stderr)
    return cases_of(notes)
