"""Saved interviews in SQLite under the data dir.

Every turn is written here before the reply is shown, so a browser refresh or a
server restart can resume an unfinished interview. Each thread keeps its own
connection: the store is safe to share between the threads of a web server (one more,
idle connection stays open so that closing the others does not checkpoint the WAL).

Each session has an owner (the logged-in user, "" without login): `scoped(owner)`
gives the view one user may see - their own sessions only - and a session saved
under one owner cannot be overwritten under another.

A damaged database file (not SQLite, corrupt pages, a foreign schema) is never
fatal: it is moved aside as `sessions.sqlite3.damaged-<time>` for the user to
keep, a fresh one is started, and one warning line names both files. This
happens on opening and, if the file is damaged while the app runs, on the next
call (which is then retried on the fresh file). A saved row whose JSON does not
validate is a one-line error naming the session and the file.

`open_store(settings)` picks the store: this SQLite file (the embedded default), or
PostgreSQL (`mlsd_bot/pgstore.py`) when MLSD_DATABASE_URL is set, so that several
app processes share the sessions. Both have the methods of `_Sessions`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from pydantic import ValidationError

from .errors import BadInputError, SessionNotFoundError, StoreError
from .report import Report
from .state import InterviewState
from .textsafe import clean

_COLUMNS = ("id", "case_id", "level", "started", "updated", "finished", "phase", "score", "state", "report", "owner")
# `owner`: the user a session belongs to ("" when nobody logs in). Files made before it are migrated.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, case_id TEXT NOT NULL, level TEXT NOT NULL,
    started REAL NOT NULL, updated REAL NOT NULL, finished INTEGER NOT NULL,
    phase TEXT NOT NULL, score INTEGER, state TEXT NOT NULL, report TEXT, owner TEXT NOT NULL DEFAULT ''
)"""
_ADD_OWNER = "ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''"
# SQLite's "this is not a (healthy) database" codes; anything else (locked, read-only,
# no such folder) is the environment's problem and is reported, not repaired.
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
T = TypeVar("T")


class _Damaged(Exception):
    """The file is not a usable sessions database (the reason is the message)."""


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


def _warn(line: str) -> None:
    print(f"mlsd-bot: warning: {line}", file=sys.stderr, flush=True)


def open_store(settings) -> "_Sessions":
    """The sessions store the settings ask for: PostgreSQL if MLSD_DATABASE_URL is set, else SQLite."""
    if settings.database_url:
        from .pgstore import PostgresSessionStore  # psycopg is imported only when it is used

        return PostgresSessionStore(settings.database_url)
    return SessionStore(settings.sessions_db)


class _Sessions:
    """What both stores share: parsing saved rows, the per-owner view, the cross-process lock."""

    where: str  # the file or the (password-free) database URL, for messages
    TABLE: str  # the sessions table
    MARK: str  # the driver's parameter placeholder ("?" for sqlite3, "%s" for psycopg)
    # Each store defines _run(fn): fn(connection) under its own error handling.

    def load(self, session_id: str, owner: str | None = None) -> InterviewState:
        """The saved state; with `owner`, only a session of that owner (any other is 'not found')."""
        row = self._row("state", session_id, owner)
        return self._parse(InterviewState, row[0], session_id, "saved state")

    def report(self, session_id: str, owner: str | None = None) -> Report | None:
        row = self._row("report", session_id, owner)
        return self._parse(Report, row[0], session_id, "saved report") if row[0] else None

    def _row(self, column: str, session_id: str, owner: str | None) -> tuple:
        session_id = clean(str(session_id))  # ids come from URLs and the API: no surrogates or NULs to bind
        sql, params = f"SELECT {column} FROM {self.TABLE} WHERE id = {self.MARK}", (session_id,)
        if owner is not None:
            sql, params = sql + f" AND owner = {self.MARK}", (session_id, owner)
        row = self._run(lambda conn: conn.execute(sql, params).fetchone())
        if row is None:
            raise SessionNotFoundError(session_id)
        return row

    def list(self, limit: int = 100, owner: str | None = None) -> list[SessionSummary]:
        """Newest first; with `owner`, only that owner's sessions."""
        where, params = (f"WHERE owner = {self.MARK} ", (owner, limit)) if owner is not None else ("", (limit,))
        rows = self._run(lambda conn: conn.execute(
            "SELECT id, case_id, level, started, updated, finished, phase, score, report "
            f"FROM {self.TABLE} {where}ORDER BY updated DESC LIMIT {self.MARK}", params).fetchall())
        return [SessionSummary(*r[:5], bool(r[5]), r[6], r[7], _phase_scores(r[8])) for r in rows]

    def _parse(self, model, raw, session_id: str, what: str):
        try:
            return model.model_validate_json(raw)
        except (ValidationError, ValueError, TypeError) as e:
            first = e.errors()[0]["msg"] if isinstance(e, ValidationError) else type(e).__name__
            raise BadInputError(f"{self.where}: the {what} of interview {session_id} is damaged ({first}) - "
                                "start a new interview") from None

    def latest_unfinished(self, owner: str | None = None) -> SessionSummary | None:
        return next((s for s in self.list(owner=owner) if not s.finished), None)

    def scoped(self, owner: str) -> "OwnedSessions":
        """This store as one user sees it: their sessions only, new ones saved as theirs."""
        return OwnedSessions(self, owner)

    def lock(self, state: InterviewState) -> Callable[[], None]:
        """Hold this session for one turn against other processes; returns the release function.
        One SQLite file serves one app process, whose in-process lock (locks.py) is enough."""
        return lambda: None


class SessionStore(_Sessions):
    TABLE, MARK = "sessions", "?"

    def __init__(self, path: Path, clock: Callable[[], float] = time.time, warn: Callable[[str], None] = _warn):
        self.path, self.clock, self._warn = Path(path), clock, warn
        self.where = str(self.path)
        self._repair_lock = threading.Lock()
        self._checked = False  # True once the file passed _open_checked
        self._keeper: sqlite3.Connection | None = None  # see _keep_open
        # One connection per worker thread, reused (see _connection); a repair bumps the generation
        # so every thread reconnects to the fresh file.
        self._local = threading.local()
        self._generation = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.path.parent}: cannot create the data folder ({e.strerror}) - set MLSD_DATA_DIR")
        self._run(lambda db: None)  # creates, checks (and if need be replaces) the file now

    # --- opening, checking, repairing -----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer of another session
            # Commits reach the OS without an fsync each (WAL + NORMAL): a killed app loses no
            # saved turn (the OS has the pages); only a power cut may lose the last ones. An fsync
            # per save was most of a turn's time on the database.
            db.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            db.close()
            raise
        return db

    def _open_checked(self) -> sqlite3.Connection:
        """A connection to a file that holds our table (created when missing) and passes quick_check."""
        db = self._connect()
        try:
            with db:
                db.execute(_SCHEMA)
            columns = tuple(r[1] for r in db.execute("PRAGMA table_info(sessions)"))
            if columns == _COLUMNS[:-1]:  # a file from before users: every session so far is nobody's
                with db:
                    db.execute(_ADD_OWNER)
                columns = _COLUMNS
            if columns != _COLUMNS:
                raise _Damaged(f"its sessions table has other columns: {', '.join(columns)}")
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise _Damaged(f"quick_check: {verdict}")
        except BaseException:
            db.close()
            raise
        return db

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on this thread's connection; a damaged file is moved aside once and `fn` retried."""
        for attempt in (1, 2):
            try:
                out = fn(self._connection())
                self._local.stamp = self._stamp()  # our own commit may have checkpointed into the file
                self._checked = True  # the file is known good: later calls skip quick_check
                self._keep_open()
                return out
            except (sqlite3.DatabaseError, _Damaged) as e:
                self._forget_connection()  # the next call opens (and, after a repair, checks) anew
                if not _is_damage(e) or attempt == 2:
                    raise StoreError(f"{self.path}: the sessions database failed ({_reason(e)}) - "
                                     "check the file and its folder, or set MLSD_DATA_DIR elsewhere") from None
                self._repair(_reason(e))
        raise AssertionError("unreachable")

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on its first call. Opening one (a file open and two
        pragmas) per call was ~7% of a turn's CPU under load; the app's worker threads are pooled,
        so each keeps its own. It is replaced after a repair, and when the file changed since this
        thread last used it (another program overwrote it, or a checkpoint wrote the WAL back into
        it), so a damaged file is found as soon as a fresh connection would find it (not always:
        a fresh one too reads pages still in the WAL, page 1 included, from there)."""
        local = self._local
        if getattr(local, "db", None) is not None and (local.generation, local.stamp) == (self._generation, self._stamp()):
            return local.db
        self._forget_connection()
        generation = self._generation
        if not self._checked:  # checked on a connection of its own, closed at once (its writes reach the file)
            self._open_checked().close()
        local.db = self._connect()
        local.generation, local.stamp = generation, self._stamp()
        return local.db

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _forget_connection(self) -> None:
        db, self._local.db = getattr(self._local, "db", None), None
        if db is not None:
            db.close()

    def _keep_open(self) -> None:
        """Hold one idle connection for the store's life. SQLite checkpoints the WAL into the file
        (with an fsync) whenever its last connection closes: with a connection per call that was
        every save, ~25 ms of a turn's wall time and 1 ms of CPU; held open, the WAL is checkpointed
        every 1,000 pages instead (committed turns are in the WAL either way)."""
        if self._keeper is None:
            with self._repair_lock:
                if self._keeper is None:
                    keeper = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
                    keeper.execute("PRAGMA journal_mode=WAL")  # opens the WAL index: now it counts as open
                    self._keeper = keeper

    def close(self) -> None:
        """Let go of the idle connection and this thread's: the WAL is checkpointed into the file once the
        last connection closes (the store stays usable; other threads' connections close with their threads)."""
        with self._repair_lock:
            self._forget_connection()
            self._drop_keeper()

    def _drop_keeper(self) -> None:
        """Close the idle connection, if any (the caller holds _repair_lock)."""
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None

    def _repair(self, reason: str) -> None:
        """Move the damaged file (and its -wal/-shm) aside, then start a fresh one. Thread-safe."""
        with self._repair_lock:
            self._checked = False
            self._generation += 1  # every thread's connection to the damaged file is replaced on its next call
            self._drop_keeper()  # the damaged file is let go before it is moved
            try:  # another thread may have repaired it meanwhile
                self._open_checked().close()
                self._checked = True
                return
            except (sqlite3.DatabaseError, _Damaged):
                pass
            aside = self._aside_name()
            try:
                for suffix in ("", "-wal", "-shm"):
                    src = self.path.with_name(self.path.name + suffix)
                    if src.exists():
                        src.rename(aside.with_name(aside.name + suffix))
            except OSError as e:
                raise StoreError(f"{self.path} is damaged ({reason}) and could not be moved aside "
                                 f"({e.strerror}) - move or delete it yourself") from None
            self._warn(f"{self.path} is damaged ({reason}); kept it as {aside} and started a fresh one")
            self._open_checked().close()
            self._checked = True

    def _aside_name(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.clock()))
        aside, n = self.path.with_name(f"{self.path.name}.damaged-{stamp}"), 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        return aside

    # --- the store's operations -----------------------------------------------------------------

    def save(self, state: InterviewState, report: Report | None = None, owner: str = "") -> None:
        """Insert or update the session. A session keeps the owner it was created with: saving it
        under another owner changes nothing and raises SessionNotFoundError (as if it did not exist)."""
        row = (state.session_id, state.case_id, state.level, state.started_at, self.clock(), int(state.finished),
               state.phase, report.overall.score if report else None, state.model_dump_json(),
               report.model_dump_json() if report else None, owner)

        def write(db: sqlite3.Connection) -> int:
            with db:
                return db.execute(
                    f"INSERT INTO sessions ({', '.join(_COLUMNS)}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(id) DO UPDATE SET "
                    "updated=excluded.updated, finished=excluded.finished, phase=excluded.phase, "
                    "score=COALESCE(excluded.score, sessions.score), state=excluded.state, "
                    "report=COALESCE(excluded.report, sessions.report) WHERE sessions.owner = excluded.owner",
                    row).rowcount

        if self._run(write) == 0:
            raise SessionNotFoundError(state.session_id)


class OwnedSessions:
    """One owner's view of a store, with the same methods (a drop-in for the UI and the CLI)."""

    def __init__(self, store: _Sessions, owner: str):
        self.store, self.owner = store, owner

    def lock(self, state: InterviewState) -> Callable[[], None]:
        return self.store.lock(state)

    def save(self, state: InterviewState, report: Report | None = None) -> None:
        self.store.save(state, report, owner=self.owner)

    def load(self, session_id: str) -> InterviewState:
        return self.store.load(session_id, owner=self.owner)

    def report(self, session_id: str) -> Report | None:
        return self.store.report(session_id, owner=self.owner)

    def list(self, limit: int = 100) -> list[SessionSummary]:
        return self.store.list(limit, owner=self.owner)

    def latest_unfinished(self) -> SessionSummary | None:
        return self.store.latest_unfinished(owner=self.owner)


def _is_damage(e: Exception) -> bool:
    return isinstance(e, _Damaged) or getattr(e, "sqlite_errorcode", None) in _DAMAGED


def _reason(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _phase_scores(report_json: str | None) -> dict[str, int]:
    """Per-phase scores of a saved report; a damaged one shows none rather than breaking the list."""
    if not report_json:
        return {}
    try:
        return {p: int(v["score"]) for p, v in json.loads(report_json)["phases"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}
