"""Interview state: typed, serializable (JSON), free of globals.

A session is saved after every turn and can be resumed from this object alone.
"""

from __future__ import annotations

import secrets
from typing import Literal, Optional

from pydantic import BaseModel, Field

from .contract import PHASES, Action

Level = Literal["mid", "senior", "staff"]

# Share of the time budget per phase; sums to 1. Model and data get the most,
# as in a real 45-minute round.
PHASE_SHARE = {"clarify": 0.14, "framing": 0.09, "data": 0.16, "model": 0.2,
               "evaluation": 0.15, "serving": 0.13, "monitoring": 0.13}


def new_session_id() -> str:
    """128 random bits, URL-safe, without '-': an id starting with '-' reads as an option to
    `mlsd-bot chat --resume ID` (argparse), so the alphabet keeps '_' only (~127 bits)."""
    return secrets.token_urlsafe(16).replace("-", "_")


class Turn(BaseModel):
    n: int
    role: Literal["candidate", "interviewer"]
    phase: str
    text: str
    at: float = 0.0  # seconds since the interview started
    action: Optional[Action] = None
    topic: Optional[str] = None
    covered: list[str] = Field(default_factory=list)
    citations: list[str] = Field(default_factory=list)
    notice: Optional[str] = None  # e.g. "the LLM failed, offline voice used"


class Evidence(BaseModel):
    """The candidate's best sentence on a signal: its depth (0-3), why, where and when it was said."""
    signal: str
    said_in: str
    quote: str
    turn: int
    depth: int = Field(1, ge=0, le=3)
    why: str = ""
    prompted: bool = False  # said in reply to the interviewer asking about it (not volunteered)


class Mistake(BaseModel):
    """A pitfall the candidate fell into, the sentence that showed it, and whether they fixed it after pushback."""
    pitfall: str
    phase: str
    signal: str
    quote: str
    turn: int
    fixed: bool = False
    fix_quote: str = ""
    # Said in another phase and matched only loosely: pushed back on, but charged only once the
    # candidate repeats the choice in their reply (a doubt that is never confirmed costs nothing).
    doubt: bool = False


class InterviewState(BaseModel):
    # ~127 random bits (new_session_id): an id is unguessable, so it cannot be found by trying. Ids saved before
    # (12 hex digits) are plain strings too and still load.
    session_id: str = Field(default_factory=new_session_id)
    case_id: str
    level: Level = "senior"
    budget_minutes: int = Field(45, ge=5, le=180)
    voice: str = "offline"  # the voice picked at the start ("offline" or "llm"), used again on resume
    started_at: float = 0.0  # clock reading at the start (epoch seconds with a real clock)
    phase: str = PHASES[0]
    phase_started_at: float = 0.0
    finished: bool = False
    covered: dict[str, Evidence] = Field(default_factory=dict)
    asked: list[str] = Field(default_factory=list)  # question keys already asked: never repeat
    hints: dict[str, list[str]] = Field(default_factory=dict)  # phase -> signals hinted at
    critiques: dict[str, str] = Field(default_factory=dict)  # critique key -> phase it was raised in
    mistakes: dict[str, Mistake] = Field(default_factory=dict)  # pitfall id -> the mistake
    pending: list[str] = Field(default_factory=list)  # topics of the question on the table
    pending_text: str = ""  # that question, as asked
    auto_advanced: bool = False  # the last interviewer turn moved on by itself (not on /next)
    clarified: list[str] = Field(default_factory=list)  # topics the candidate asked the interviewer about
    clarify_questions: int = 0  # questions the candidate asked during the clarify phase
    skipped: list[str] = Field(default_factory=list)  # phases left with /next
    timed_out: list[str] = Field(default_factory=list)  # phases the clock ended
    turns: list[Turn] = Field(default_factory=list)

    def phase_budget(self, phase: str) -> float:
        return self.budget_minutes * 60 * PHASE_SHARE[phase]

    def candidate_turns(self, phase: str | None = None) -> list[Turn]:
        return [t for t in self.turns if t.role == "candidate" and (phase is None or t.phase == phase)]

    def charged(self) -> list[Mistake]:
        """The mistakes that count in the grade: all but doubts the candidate never confirmed."""
        return [m for m in self.mistakes.values() if not m.doubt]

    def interviewer_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.role == "interviewer"]
