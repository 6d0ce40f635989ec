"""Start, resume and finish interviews for the browser UI (plain Python, no gradio).

One `Control` serves every browser session: it holds only read-only things (the
shared `Deps`, the SQLite store, the output folder). The voice a candidate picked
is kept in the interview's state, so a resumed interview speaks with it again.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInputError, SessionNotFoundError
from ..interview import Deps, Interview, llm_voice
from ..report import Report, to_html, to_markdown
from ..sessions import SessionStore
from ..state import InterviewState, Level
from ..voice import LLMVoice, OfflineVoice

RANDOM_CASE = "random"
LEVELS = ("mid", "senior", "staff")
MIN_MINUTES, MAX_MINUTES = 5, 180  # what InterviewState accepts


@dataclass(frozen=True)
class Finished:
    report: Report
    markdown_path: Path
    html_path: Path


class Control:
    def __init__(self, deps: Deps, store: SessionStore, out_dir: Path):
        self.deps, self.store, self.out_dir = deps, store, Path(out_dir)
        # The configured chat model, if settings chose the LLM voice; shared (it is stateless).
        self.model = deps.voice.model if isinstance(deps.voice, LLMVoice) else None

    @property
    def voices(self) -> list[str]:
        return ["offline", "llm"] if self.model else ["offline"]

    def default_voice(self) -> str:
        return self.voices[-1]

    def _deps_for(self, voice: str) -> Deps:
        if voice == "llm" and self.model:
            return self.deps.with_voice(llm_voice(self.model, self.deps))
        return self.deps.with_voice(OfflineVoice())

    def start(self, case_id: str, level: Level, minutes: int, voice: str) -> Interview:
        """A new interview (not yet opened). Inputs may come from the API, so they are checked."""
        if level not in LEVELS:
            raise BadInputError(f"level must be one of {', '.join(LEVELS)}")
        if voice not in self.voices:
            raise BadInputError(f"voice must be one of {', '.join(self.voices)}")
        if not MIN_MINUTES <= int(minutes) <= MAX_MINUTES:
            raise BadInputError(f"the time budget must be {MIN_MINUTES} to {MAX_MINUTES} minutes")
        if case_id == RANDOM_CASE:
            case_id = random.choice(sorted(self.deps.cases))
        iv = Interview.new(self._deps_for(voice), case_id, level=level, budget_minutes=int(minutes),
                           on_change=self.store.save)
        iv.state.voice = voice
        return iv

    def resumable(self, session_id: str | None) -> InterviewState | None:
        """The saved state of an unfinished interview with this id, if there is one."""
        try:
            state = self.store.load(session_id) if session_id else None
        except (SessionNotFoundError, BadInputError):  # unknown id, or its saved state is damaged
            return None
        return state if state and not state.finished and state.case_id in self.deps.cases else None

    def resume(self, state: InterviewState) -> Interview:
        """Rebuild the interview from its saved state; it goes on saving to the same row."""
        voice = state.voice if state.voice in self.voices else self.default_voice()
        return Interview(state, self._deps_for(voice), on_change=self.store.save)

    def finish(self, iv: Interview) -> Finished:
        """Save the report with the session and write the two downloads."""
        report = iv.report()
        self.store.save(iv.state, report)
        folder = self.out_dir / f"{iv.state.session_id}-{secrets.token_hex(4)}"
        folder.mkdir(parents=True, exist_ok=True)
        md, page = folder / f"mlsd-report-{iv.state.case_id}.md", folder / f"mlsd-report-{iv.state.case_id}.html"
        md.write_text(to_markdown(report), encoding="utf-8")
        page.write_text(to_html(report), encoding="utf-8")
        return Finished(report, md, page)
