"""One writer per interview: a second message while a reply is still streaming is refused.

`Interview.send` appends the candidate's turn and the interviewer's turn, then
streams the reply into the latter. Two sends on one session at once (Hint pressed
while a reply streams, two tabs, an API client) would interleave those turns. The
web layer therefore sends through `SESSIONS.send(iv, text)`: the session is marked
busy from the call until its reply stream ends (exhausted, failed, closed or
dropped), and a send meanwhile raises SessionBusyError - nothing of it is saved.

The registry holds only the sessions busy right now (a set under one mutex), so it
stays small however many sessions there are. It is per process: several app
processes on one database need a lock in the database as well, which the app
plugs in as `SESSIONS.across = store.lock` (the PostgreSQL store's advisory lock;
a no-op for SQLite). It is taken after the in-process lock and released with it.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator, Protocol

from .errors import SessionBusyError


class _Sends(Protocol):
    state: object

    def send(self, text: str) -> Iterator[str]: ...


class SessionLocks:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._busy: set[str] = set()
        # The store's cross-process lock: (state) -> release; raises SessionBusyError or SessionStaleError.
        self.across: Callable[[object], Callable[[], None]] | None = None

    def busy(self, session_id: str) -> bool:
        with self._mutex:
            return session_id in self._busy

    def acquire(self, session_id: str) -> Callable[[], None]:
        """Mark the session busy (or raise SessionBusyError); returns the release function (idempotent)."""
        with self._mutex:
            if session_id in self._busy:
                raise SessionBusyError()
            self._busy.add(session_id)
        held = [True]

        def release() -> None:
            with self._mutex:
                if held[0]:  # only once: a later holder of the same session must keep its lock
                    held[0] = False
                    self._busy.discard(session_id)

        return release

    def send(self, iv: _Sends, text: str) -> Iterator[str]:
        """`iv.send(text)` while holding the session's lock, released when the reply stream ends."""
        release = self.acquire(iv.state.session_id)
        try:
            if self.across is not None:
                release = _both(self.across(iv.state), release)
            stream = iv.send(text)
        except BaseException:
            release()
            raise
        return _Held(stream, release)


def _both(first: Callable[[], None], then: Callable[[], None]) -> Callable[[], None]:
    """Release the cross-process lock, then the in-process one (each at most once)."""
    def release() -> None:
        try:
            first()
        finally:
            then()
    return release


class _Held:
    """An iterator over a reply that releases the lock when the reply ends, however it ends."""

    def __init__(self, stream: Iterator[str], release: Callable[[], None]):
        self._stream, self._release = stream, release

    def __iter__(self) -> "_Held":
        return self

    def __next__(self) -> str:
        try:
            return next(self._stream)
        except BaseException:  # StopIteration at the end, or the reply failed
            self.close()
            raise

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        try:
            if close:
                close()
        finally:
            self._release()

    def __del__(self) -> None:  # a stream never consumed to the end (e.g. the client went away)
        self.close()


SESSIONS = SessionLocks()  # the process-wide registry the web layer uses
