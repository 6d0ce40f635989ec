"""Session bookkeeping for the browser UI, without gradio (testable on its own).

`Control` starts, resumes, reopens and finishes interviews over the shared
engine dependencies and the session store; `message_problem` decides whether a
candidate message may be sent at all. Every call names the owner it acts for
(the logged-in user, or a browser's key) and sees that owner's sessions only:
another owner's session id is "not found", exactly like an id that does not exist.
The voice a candidate picked is kept in the interview's state, so a resumed
interview speaks with it again.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInputError, SessionNotFoundError
from ..interview import MAX_MESSAGE_CHARS, Deps, Interview, llm_voice
from ..report import Report, to_html, to_markdown
from ..sessions import SessionStore, SessionSummary
from ..state import InterviewState, Level
from ..voice import LLMVoice, OfflineVoice

RANDOM_CASE = "random"
LEVELS = ("mid", "senior", "staff")
MIN_MINUTES, MAX_MINUTES = 5, 180  # what InterviewState accepts
COMMANDS = {"/hint": "a nudge on what to cover next", "/next": "move on to the next phase",
            "/end": "finish and get your report"}
# "/word" alone or followed by text is meant as a command; "/usr/bin/..." or "/ 2" is not.
_COMMAND = re.compile(r"^(/[A-Za-z]+)(?:\s|$)")


# A browser key: what new_browser_key() makes (token_urlsafe), within sane lengths.
_BROWSER_KEY = re.compile(r"[A-Za-z0-9_-]{22,86}")
BROWSER_KEY_BYTES = 24  # 192 random bits: guessing another browser's key is hopeless


def new_browser_key() -> str:
    """A fresh key for a browser (or an API client) without login; it stays in that browser."""
    return secrets.token_urlsafe(BROWSER_KEY_BYTES)


def browser_owner(key: object) -> str | None:
    """The owner name of a browser's sessions, or None for anything that is not a browser key.

    The store keeps a hash, never the key: whoever reads the database cannot pose as the
    browser. The "browser:" prefix cannot clash with a user name (users.NAME has no colon),
    nor with "" (sessions made before owners, and the terminal's).
    """
    if not isinstance(key, str) or not _BROWSER_KEY.fullmatch(key):
        return None
    return "browser:" + hashlib.sha256(key.encode("ascii")).hexdigest()[:40]


def commands_text() -> str:
    return "; ".join(f"{c} {what}" for c, what in COMMANDS.items())


def command_names() -> str:
    return ", ".join(list(COMMANDS)[:-1]) + " or " + list(COMMANDS)[-1]


def message_problem(text: str | None) -> tuple[str, str] | None:
    """(kind, message for the candidate) when `text` should not be sent, else None.

    The engine checks empty and over-long messages too; the UI checks first so it can
    say so next to the box and keep the text there. Unknown commands never reach the
    engine (it would grade "/foo" as an answer).
    """
    text = (text or "").strip()
    if not text:
        return "empty", f"Type an answer first (or {command_names()})."
    if len(text) > MAX_MESSAGE_CHARS:
        return "too_long", (f"That is {len(text):,} characters; the limit is {MAX_MESSAGE_CHARS:,}. "
                            "Please split it into two messages.")
    m = _COMMAND.match(text)
    if m and m.group(1).lower() not in COMMANDS:
        return "unknown_command", f"{m.group(1)} is not a command: use {command_names()}."
    return None


@dataclass(frozen=True)
class Finished:
    report: Report
    state: InterviewState
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

    def start(self, case_id: str, level: Level, minutes: int, voice: str, owner: str) -> Interview:
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
                           on_change=self.store.scoped(owner).save)
        iv.state.voice = voice
        return iv

    def lookup(self, session_id: str | None, owner: str) -> InterviewState | None:
        """The owner's saved state under this id (finished or not), if it exists and its case is still known."""
        try:
            state = self.store.scoped(owner).load(session_id) if session_id else None
        except (SessionNotFoundError, BadInputError):  # unknown id, or its saved state is damaged
            return None
        return state if state and state.case_id in self.deps.cases else None

    def resumable(self, session_id: str | None, owner: str) -> InterviewState | None:
        """The owner's saved state of an unfinished interview with this id, if there is one."""
        state = self.lookup(session_id, owner)
        return state if state and not state.finished else None

    def history(self, owner: str) -> list[SessionSummary]:
        """The owner's saved interviews, most recently active first."""
        return self.store.scoped(owner).list()

    def resume(self, state: InterviewState, owner: str) -> Interview:
        """Rebuild the interview from its saved state; it goes on saving to the same row."""
        voice = state.voice if state.voice in self.voices else self.default_voice()
        return Interview(state, self._deps_for(voice), on_change=self.store.scoped(owner).save)

    def finish(self, iv: Interview, owner: str) -> Finished:
        """Save the report with the session and write the two downloads."""
        report = iv.report()
        self.store.scoped(owner).save(iv.state, report)
        return self._downloads(iv.state, report)

    def reopen(self, state: InterviewState, owner: str) -> Finished | None:
        """A finished interview's saved report, with fresh downloads (None if it has no report)."""
        report = self.store.scoped(owner).report(state.session_id) if state.finished else None
        return self._downloads(state, report) if report else None

    def _downloads(self, state: InterviewState, report: Report) -> Finished:
        """The report with the whole conversation under it, as Markdown and as an HTML page."""
        folder = self.out_dir / f"{state.session_id}-{secrets.token_hex(4)}"
        folder.mkdir(parents=True, exist_ok=True)
        md, page = folder / f"mlsd-report-{state.case_id}.md", folder / f"mlsd-report-{state.case_id}.html"
        md.write_text(to_markdown(report, state.turns), encoding="utf-8")
        page.write_text(to_html(report, state.turns), encoding="utf-8")
        return Finished(report, state, md, page)
