"""Saved interviews in SQLite under the data dir.

Every turn is written here before the reply is shown, so a browser refresh or a
server restart can resume an unfinished interview. Each call opens its own
connection: the store is safe to share between the threads of a web server.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import SessionNotFoundError
from .report import Report
from .state import InterviewState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, case_id TEXT NOT NULL, level TEXT NOT NULL,
    started REAL NOT NULL, updated REAL NOT NULL, finished INTEGER NOT NULL,
    phase TEXT NOT NULL, score INTEGER, state TEXT NOT NULL, report TEXT
)"""


@dataclass(frozen=True)
class SessionSummary:
    id: str
    case_id: str
    level: str
    started: float
    updated: float
    finished: bool
    phase: str
    score: int | None
    phase_scores: dict[str, int]


class SessionStore:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time):
        self.path, self.clock = Path(path), clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer of another session
        return db

    def save(self, state: InterviewState, report: Report | None = None) -> None:
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                "updated=excluded.updated, finished=excluded.finished, phase=excluded.phase, "
                "score=COALESCE(excluded.score, sessions.score), state=excluded.state, "
                "report=COALESCE(excluded.report, sessions.report)",
                (state.session_id, state.case_id, state.level, state.started_at, self.clock(), int(state.finished),
                 state.phase, report.overall.score if report else None, state.model_dump_json(),
                 report.model_dump_json() if report else None))

    def load(self, session_id: str) -> InterviewState:
        row = self._row("SELECT state FROM sessions WHERE id=?", session_id)
        return InterviewState.model_validate_json(row[0])

    def report(self, session_id: str) -> Report | None:
        row = self._row("SELECT report FROM sessions WHERE id=?", session_id)
        return Report.model_validate_json(row[0]) if row[0] else None

    def _row(self, sql: str, session_id: str) -> tuple:
        with closing(self._connect()) as db:
            row = db.execute(sql, (session_id,)).fetchone()
        if row is None:
            raise SessionNotFoundError(session_id)
        return row

    def list(self, limit: int = 100) -> list[SessionSummary]:
        """Newest first."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, case_id, level, started, updated, finished, phase, score, report "
                              "FROM sessions ORDER BY updated DESC LIMIT ?", (limit,)).fetchall()
        return [SessionSummary(*r[:5], bool(r[5]), r[6], r[7], _phase_scores(r[8])) for r in rows]

    def latest_unfinished(self) -> SessionSummary | None:
        return next((s for s in self.list() if not s.finished), None)


def _phase_scores(report_json: str | None) -> dict[str, int]:
    if not report_json:
        return {}
    return {p: v["score"] for p, v in json.loads(report_json)["phases"].items()}
