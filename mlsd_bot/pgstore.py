"""Saved interviews in PostgreSQL, so that several app processes can serve one set of sessions.

Chosen by `sessions.open_store` when MLSD_DATABASE_URL=postgresql://... is set; the
SQLite store stays the embedded default. The operations, the per-owner view and
the one-line errors are those of `sessions.SessionStore`.

Connections: a few idle autocommit connections are kept and one is taken per
call, so the store is shared by the threads of a web server like the SQLite one.

One writer per session across processes: `lock(state)` takes a PostgreSQL
advisory lock keyed by the session id, on a connection held until the turn's
reply has been saved (the web layer calls it through locks.SESSIONS). A second
process sending on the same session meanwhile gets SessionBusyError. A copy of
the interview that is behind the saved one (another process went on with it)
gets SessionStaleError instead of overwriting the turns it does not know.

The URL's password never shows: messages name the URL with the password masked,
and any text from the driver is scrubbed of it.
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from typing import Callable, TypeVar
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .errors import ConfigError, SessionBusyError, SessionNotFoundError, SessionStaleError, StoreError
from .report import Report
from .sessions import _Sessions
from .state import InterviewState

T = TypeVar("T")
IDLE_CONNECTIONS = 8  # kept open between calls; more are opened when more threads call at once
CONNECT_TIMEOUT = 10  # seconds
# `turns` (how many turns the saved state holds) lets lock() see a stale copy without parsing the state.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mlsd_sessions (
        id TEXT PRIMARY KEY, case_id TEXT NOT NULL, level TEXT NOT NULL,
        started DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL, finished BOOLEAN NOT NULL,
        phase TEXT NOT NULL, score INTEGER, state TEXT NOT NULL, report TEXT,
        owner TEXT NOT NULL DEFAULT '', turns INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS mlsd_sessions_owner_updated ON mlsd_sessions (owner, updated DESC)",
)
_SCHEMA_LOCK = 0x6D6C7364  # one process at a time creates the table (CREATE IF NOT EXISTS races otherwise)
_UPSERT = """
INSERT INTO mlsd_sessions (id, case_id, level, started, updated, finished, phase, score, state, report, owner, turns)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET updated = EXCLUDED.updated, finished = EXCLUDED.finished, phase = EXCLUDED.phase,
    score = COALESCE(EXCLUDED.score, mlsd_sessions.score), state = EXCLUDED.state,
    report = COALESCE(EXCLUDED.report, mlsd_sessions.report), turns = EXCLUDED.turns
WHERE mlsd_sessions.owner = EXCLUDED.owner"""
_KEY = "hashtextextended(%s, 0)"  # the advisory lock's bigint key for a session id


class _Redactor:
    """The URL with its password masked, and a scrubber for any text that might quote the password."""

    def __init__(self, url: str):
        try:
            password = conninfo_to_dict(url).get("password") or ""
        except psycopg.Error:  # its message would quote the URL: say what is wrong without it
            raise ConfigError("MLSD_DATABASE_URL is not a valid PostgreSQL URL "
                              "(postgresql://user:password@host:port/database)") from None
        self._secrets = [s for s in {str(password), quote(str(password), safe="")} if s]
        self.url = self.scrub(url)

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


class PostgresSessionStore(_Sessions):
    TABLE, MARK = "mlsd_sessions", "%s"

    def __init__(self, url: str, clock: Callable[[], float] = time.time, idle: int = IDLE_CONNECTIONS):
        self._redactor = _Redactor(url)
        self._url, self.clock, self._max_idle = url, clock, idle
        self.where = self._redactor.url
        self._idle: list[psycopg.Connection] = []
        self._mutex = threading.Lock()
        self._run(self._create_schema)

    # --- connections ------------------------------------------------------------------------

    def _take(self) -> psycopg.Connection:
        with self._mutex:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)

    def _give(self, conn: psycopg.Connection) -> None:
        with self._mutex:
            if not conn.closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _run(self, fn: Callable[[psycopg.Connection], T], keep: bool = False) -> T:
        """`fn` on a pooled connection. A broken idle connection (server restarted) is replaced once;
        any other failure is a one-line StoreError without the password. With `keep` the connection
        is not given back: `fn` returns it (with what it holds) to the caller."""
        for attempt in (1, 2):
            conn = None
            try:
                conn = self._take()
                out = fn(conn)
            except psycopg.Error as e:
                if conn is not None:
                    conn.close()
                if isinstance(e, psycopg.OperationalError) and attempt == 1 and conn is not None:
                    continue
                raise self._failed(e) from None
            except BaseException:
                if conn is not None:
                    self._give(conn)
                raise
            if not keep:
                self._give(conn)
            return out
        raise AssertionError("unreachable")

    def _failed(self, e: Exception) -> StoreError:
        reason = " ".join(self._redactor.scrub(str(e) or type(e).__name__).split())
        return StoreError(f"{self.where}: the sessions database failed ({reason}) - "
                          "check MLSD_DATABASE_URL and that PostgreSQL is running")

    @staticmethod
    def _create_schema(conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                conn.execute(statement)

    # --- the store's operations ---------------------------------------------------------------

    def save(self, state: InterviewState, report: Report | None = None, owner: str = "") -> None:
        """Insert or update; a session keeps its owner (saving it under another raises SessionNotFoundError)."""
        row = (state.session_id, state.case_id, state.level, state.started_at, self.clock(), state.finished,
               state.phase, report.overall.score if report else None, state.model_dump_json(),
               report.model_dump_json() if report else None, owner, len(state.turns))
        if self._run(lambda conn: conn.execute(_UPSERT, row).rowcount) == 0:
            raise SessionNotFoundError(state.session_id)

    # --- one writer per session, across processes -----------------------------------------------

    def lock(self, state: InterviewState) -> Callable[[], None]:
        """Hold the session (advisory lock) until the returned function is called (idempotent).
        Raises SessionBusyError if any process holds it, SessionStaleError if `state` is behind."""
        sid, turns = state.session_id, len(state.turns)

        def take(conn: psycopg.Connection) -> tuple[psycopg.Connection, str]:
            if not conn.execute(f"SELECT pg_try_advisory_lock({_KEY})", (sid,)).fetchone()[0]:
                return conn, "busy"
            saved = conn.execute("SELECT turns FROM mlsd_sessions WHERE id = %s", (sid,)).fetchone()
            if saved and saved[0] > turns:
                conn.execute(f"SELECT pg_advisory_unlock({_KEY})", (sid,))
                return conn, "stale"
            return conn, "held"

        conn, outcome = self._run(take, keep=True)  # this connection carries the lock until release
        if outcome == "held":
            return self._releaser(conn, sid)
        self._give(conn)
        raise SessionBusyError() if outcome == "busy" else SessionStaleError()

    def _releaser(self, conn: psycopg.Connection, session_id: str) -> Callable[[], None]:
        held = [True]

        def release() -> None:
            if not held[0]:
                return
            held[0] = False
            try:
                conn.execute(f"SELECT pg_advisory_unlock({_KEY})", (session_id,))
            except psycopg.Error:  # the connection broke: the server dropped the lock with it
                with suppress(psycopg.Error):
                    conn.close()
                return
            self._give(conn)

        return release

    def close(self) -> None:
        with self._mutex:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
