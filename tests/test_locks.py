"""One writer per session (mlsd_bot/locks.py), with real threads.

A send while the session's reply is still streaming is refused with SessionBusyError
and leaves no trace; the saved turns always alternate candidate, interviewer; the
lock is released however the reply ends (finished, failed, closed, dropped).
"""

from __future__ import annotations

import gc
import random
import threading
import time

import pytest

from mlsd_bot.errors import SessionBusyError
from mlsd_bot.interview import Interview
from mlsd_bot.locks import SessionLocks
from mlsd_bot.sessions import SessionStore


class Said:
    """What a voice returns: its pieces (iterable) and a notice (None: it did not fall back)."""
    notice = None

    def __init__(self, pieces):
        self._pieces = pieces

    def __iter__(self):
        return iter(self._pieces)


class GatedVoice:
    """Says the draft, but only once `go` is set: the reply stays in flight until then.

    Open at first (for the opening question); `hold()` closes the gate for the next reply."""
    label = "gated"

    def __init__(self) -> None:
        self.started, self.go = threading.Event(), threading.Event()
        self.go.set()

    def hold(self) -> None:
        self.started.clear()
        self.go.clear()

    def speak(self, decision, state, case):
        return Said(self._pieces(decision))

    def _pieces(self, decision):
        self.started.set()
        assert self.go.wait(60), "the test never released the reply"
        yield decision.draft


class SlowVoice:
    """Says the draft in a few pieces with short pauses, to widen the window for races."""
    label = "slow"

    def speak(self, decision, state, case):
        return Said(self._pieces(decision))

    def _pieces(self, decision):
        for word in decision.draft.split(" "):
            time.sleep(0.0005)
            yield word + " "


class FailingVoice:
    """Says the opening, then breaks half-way through every later reply."""
    label = "failing"

    def speak(self, decision, state, case):
        return Said(self._pieces(state))

    def _pieces(self, state):
        yield "half a"
        if len(state.turns) > 1:
            raise RuntimeError("the voice broke")


def interview(deps, voice, store=None) -> Interview:
    iv = Interview.new(deps.with_voice(voice), "news_feed", on_change=store.save if store else None)
    list(iv.open())
    return iv


def assert_alternating(turns) -> None:
    assert [t.role for t in turns] == ["interviewer"] + ["candidate", "interviewer"] * ((len(turns) - 1) // 2)
    assert len(turns) % 2 == 1


def test_a_second_send_while_a_reply_streams_is_refused_and_leaves_no_trace(deps, tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    voice, locks = GatedVoice(), SessionLocks()
    iv = interview(deps, voice, store)
    voice.hold()
    first = threading.Thread(target=lambda: list(locks.send(iv, "About 300 million daily users.")))
    first.start()
    assert voice.started.wait(60)  # the reply is in flight now
    before = iv.state.model_dump_json()
    with pytest.raises(SessionBusyError, match="still answering"):
        locks.send(iv, "/hint")  # e.g. Hint pressed while the reply streams
    assert iv.state.model_dump_json() == before and locks.busy(iv.state.session_id)
    voice.go.set()
    first.join(60)
    assert not locks.busy(iv.state.session_id)

    list(locks.send(iv, "/hint"))  # once the reply is out, the next send goes through
    saved = store.load(iv.state.session_id).turns
    assert_alternating(saved)
    assert [t.text for t in saved if t.role == "candidate"] == ["About 300 million daily users.", "/hint"]


def test_concurrent_senders_never_interleave_the_saved_turns(deps, tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    locks = SessionLocks()
    iv = interview(deps, SlowVoice(), store)
    accepted: list[str] = []
    refused = []
    start = threading.Barrier(6)

    def sender(k: int) -> None:
        rng = random.Random(k)
        start.wait()
        for i in range(8):
            text = f"sender {k} message {i}: we log clicks as labels"
            try:
                reply = locks.send(iv, text)
            except SessionBusyError:
                refused.append(text)
                time.sleep(rng.random() / 500)
                continue
            accepted.append(text)  # under the lock: the order of acceptance is the order of sends
            "".join(reply)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    turns = store.load(iv.state.session_id).turns
    assert_alternating(turns)
    candidate = [t.text for t in turns if t.role == "candidate"]
    assert candidate == accepted[: len(candidate)]
    if not iv.finished:  # an interview that closed early refuses the rest with another error
        assert candidate == accepted
    assert len(accepted) + len(refused) <= 48
    assert all(t.text.strip() for t in turns)  # every reply was written in full, none left as a stub


@pytest.mark.parametrize("how", ["finished", "failed", "closed", "dropped"])
def test_the_lock_is_released_however_the_reply_ends(deps, how):
    locks = SessionLocks()
    iv = interview(deps, FailingVoice() if how == "failed" else SlowVoice())
    sid = iv.state.session_id
    reply = locks.send(iv, "Labels come from clicks.")
    assert locks.busy(sid)
    if how == "finished":
        list(reply)
    elif how == "failed":
        with pytest.raises(RuntimeError):
            list(reply)
    elif how == "closed":
        next(reply)
        reply.close()
    else:  # the consumer went away (a browser closed mid-reply): the stream is garbage
        next(reply)
        del reply
        gc.collect()
    assert not locks.busy(sid)


def test_a_refused_send_from_the_engine_releases_the_lock(deps):
    locks = SessionLocks()
    iv = interview(deps, SlowVoice())
    with pytest.raises(Exception, match="Type an answer"):
        locks.send(iv, "   ")
    assert not locks.busy(iv.state.session_id)


def test_different_sessions_do_not_wait_for_each_other(deps):
    locks = SessionLocks()
    slow, other = GatedVoice(), interview(deps, SlowVoice())
    iv = interview(deps, slow)
    slow.hold()
    t = threading.Thread(target=lambda: list(locks.send(iv, "About a billion users.")))
    t.start()
    assert slow.started.wait(60)
    assert "".join(locks.send(other, "About a billion users.")).strip()  # not refused, not blocked
    slow.go.set()
    t.join(60)
