"""The web handlers under hostile input and concurrent clicks (in-process: the WebApp's own handlers).

A lone surrogate or control characters sent to /send are cleaned before they reach the
state, so the session goes on (the reported bug broke it for good); a send while the
session's reply streams (Hint pressed mid-reply) is refused with a one-line error and
the saved turns still alternate candidate, interviewer.
"""

from __future__ import annotations

import json
import os
import threading

# As app.py does, before gradio is imported: no analytics. And no Hugging Face Hub calls.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import huggingface_hub.constants  # noqa: E402
import pytest  # noqa: E402

from test_locks import GatedVoice  # noqa: E402

from mlsd_bot.sessions import SessionStore  # noqa: E402
from mlsd_bot.web.app import WebApp  # noqa: E402
from mlsd_bot.web.control import Control  # noqa: E402


@pytest.fixture(autouse=True)
def _hub_offline(monkeypatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


class OfflineGatedVoice(GatedVoice):
    """test_locks' gated voice, labelled as the offline voice the web app offers."""
    label = "offline"


@pytest.fixture
def web(deps, tmp_path):
    voice = OfflineGatedVoice()
    store = SessionStore(tmp_path / "sessions.sqlite3")
    control = Control(deps.with_voice(voice), store, tmp_path / "out")
    control._deps_for = lambda _voice: deps.with_voice(voice)  # every interview speaks with the gated voice
    return WebApp(control, "test-secret"), store, voice


def started(app: WebApp):
    """A new interview through the API handlers, once its opening question is out."""
    *_, last = app.api_start("news_feed", "senior", 45, "offline")
    return last[0]  # the Session


def test_a_lone_surrogate_and_control_characters_do_not_break_the_session(web):
    app, store, _ = web
    sess = started(app)
    outputs = list(app.api_send("We expect \ud800 300M daily users \x1b[2J\x00 and p99 under 200 ms", sess))
    json.dumps([o[0] for o in outputs], ensure_ascii=False).encode("utf-8")  # what gradio serialises
    list(app.api_send("Labels come from clicks; a hide is a strong negative.", sess))
    *_, final = app.api_send("/end", sess)
    assert sess.iv.finished and "Interview report" in final[4]  # the report's markdown
    said = [t.text for t in store.load(sess.iv.state.session_id).turns if t.role == "candidate"]
    assert said == ["We expect \ufffd 300M daily users [2J and p99 under 200 ms",
                    "Labels come from clicks; a hide is a strong negative.", "/end"]


def test_hint_while_a_reply_streams_is_refused_and_the_turns_stay_in_order(web):
    app, store, voice = web
    sess = started(app)
    voice.hold()
    first = threading.Thread(target=lambda: list(app.api_send("About 300 million daily users.", sess)))
    first.start()
    assert voice.started.wait(60)
    with pytest.raises(gr.Error, match="still answering"):
        list(app.api_send("/hint", sess))
    voice.go.set()
    first.join(60)
    list(app.api_send("/hint", sess))  # once the reply is out, Hint works
    roles = [t.role for t in store.load(sess.iv.state.session_id).turns]
    assert roles == ["interviewer", "candidate", "interviewer", "candidate", "interviewer"]
