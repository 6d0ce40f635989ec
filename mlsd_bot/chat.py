"""`mlsd-bot chat`: an interactive interview in the terminal, ending with the report."""

from __future__ import annotations

import random
import sys

from .config import Settings
from .errors import MlsdError, SessionBusyError, SessionStaleError
from .interview import Interview, build_deps
from .sessions import open_store
from .textsafe import clean

HELP = "Commands: /hint for a nudge, /next to move on, /end to finish. Ctrl-D also ends."


def _pick_case(cases: dict, wanted: str | None) -> str:
    if wanted:
        return wanted
    ids = sorted(cases)
    for i, cid in enumerate(ids, 1):
        print(f"{i:3}. {cases[cid].title}")
    raw = _read("Pick a case by number (Enter for random): ").strip()
    if not raw:
        return random.choice(ids)
    if not raw.isdigit() or not 1 <= int(raw) <= len(ids):
        raise MlsdError(f"choose a number from 1 to {len(ids)}")
    return ids[int(raw) - 1]


def _read(prompt: str) -> str:
    """One line from the terminal, cleaned: bytes that are not UTF-8 become U+FFFD instead of a crash."""
    if getattr(sys.stdin, "errors", "surrogateescape") != "surrogateescape" and hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="surrogateescape")  # keep undecodable bytes as surrogates for clean()
    return clean(input(prompt))


def _say(stream) -> None:
    print("\ninterviewer> ", end="")
    for piece in stream:
        print(piece, end="", flush=True)
    print("\n")


def _send(store, iv: Interview, text: str) -> None:
    """One turn under the store's cross-process lock (PostgreSQL's advisory lock; nothing for SQLite):
    with the same interview open in another process mid-turn, or gone further there, this chat stops
    rather than write over it."""
    release = store.lock(iv.state)  # SessionBusyError / SessionStaleError: see run_chat
    try:
        _say(iv.send(text))
    finally:
        release()


def _replay_so_far(iv: Interview) -> None:
    for t in iv.state.turns:
        print(f"{'interviewer' if t.role == 'interviewer' else 'you'}> {t.text}\n")


def run_chat(settings: Settings, case_id: str | None, level: str, minutes: int, voice: str | None,
             resume: str | None = None) -> None:
    store = open_store(settings)
    saved = store.load(resume) if resume else None  # an unknown or damaged session fails before the slow part
    if saved and saved.finished:
        raise MlsdError(f"interview {resume} has ended - print it with `mlsd-bot report {resume}`")
    deps = build_deps(settings, voice=voice)
    if saved:
        iv = Interview(saved, deps, on_change=store.save)
        _replay_so_far(iv)
    else:
        iv = Interview.new(deps, _pick_case(deps.cases, case_id), level=level, budget_minutes=minutes,
                           on_change=store.save)
    print(f"({deps.voice.label} voice, session {iv.state.session_id}) {HELP}")
    if not iv.state.turns:
        _say(iv.open())
    while not iv.finished:
        try:
            text = _read("you> ")
        except EOFError:
            text = "/end"
        try:
            _send(store, iv, text)
        except (SessionBusyError, SessionStaleError):  # their messages speak of the web page
            sid = iv.state.session_id
            raise MlsdError(f"interview {sid} is going on in another window - continue it there, or later with "
                            f"`mlsd-bot chat --resume {sid}`") from None
        except MlsdError as e:  # e.g. an empty line: say why and keep going
            print(f"({e})")
    report = iv.report()
    store.save(iv.state, report)
    print(iv.report_markdown())
    print(f"Saved as {iv.state.session_id}: `mlsd-bot report {iv.state.session_id}` prints it again.", file=sys.stderr)
