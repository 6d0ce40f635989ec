"""The gradio UI: setup -> interview -> report screens, and a History tab.

The three screens are columns shown one at a time. One `Interview` per browser
session lives in gr.State (never a module global); the `Deps` behind it are
built once and shared read-only. The engine saves each turn to SQLite (its
on_change hook) before the reply streams, and the browser keeps its session id
in gr.BrowserState, so after a refresh or a server restart the page offers to
resume. Handlers have api_names so gradio_client can drive the same flows.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
import pandas as pd

from ..config import Settings
from ..contract import PHASE_TITLES
from ..errors import MlsdError
from ..interview import Deps, Interview, build_deps
from ..locks import SESSIONS
from ..sessions import SessionStore
from . import views
from .control import LEVELS, MAX_MINUTES, MIN_MINUTES, RANDOM_CASE, Control

STORAGE_KEY = "mlsd-bot-session"
CLOCK_TICK_SECONDS = 15  # the clock shows whole minutes
SCREENS = ("resume", "setup", "talk", "report")  # the columns of the Interview tab, in _screens() order
# Page-wide CSS, passed to launch() (gradio 6 takes css there). The chat's "clear" button is
# hidden: it would only blank the view, the interview itself lives on in the session.
CSS = """
#chat button[aria-label="Clear"] { display: none; }
#chat details.mlsd-sources blockquote { font-size: .88em; opacity: .85; margin: 4px 0 8px; }
"""
# run_history would keep every answer in the browser's storage: off.
LAUNCH_OPTIONS = {"css": CSS, "run_history": False}
INTRO = ("# mlsd-bot - ML system design mock interview\n"
         "Pick a case and talk it through as in a real round. The interviewer follows the 7-step framework; "
         "type **/hint**, **/next** or **/end** (or use the buttons) at any time.")
VOICE_INFO = {True: "offline: the scripted interviewer; llm: the configured chat model phrases its questions",
              False: "the scripted interviewer (set OPENAI_API_KEY or OPENAI_BASE_URL for an LLM voice)"}


def browser_secret(data_dir: Path) -> str:
    """The key gr.BrowserState encrypts with. Stored in the data dir: a random key per
    start (gradio's default) would make the saved session id unreadable after a restart."""
    path = Path(data_dir) / "web-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(settings: Settings, deps_factory: Callable[[Settings], Deps] = build_deps) -> gr.Blocks:
    """Build the UI. `deps_factory` builds the shared engine dependencies (tests may pass a fake)."""
    deps = deps_factory(settings)
    out_dir = Path(tempfile.mkdtemp(prefix="mlsd-web-"))  # report downloads; gradio serves from the temp dir
    control = Control(deps, SessionStore(settings.sessions_db), out_dir)
    return WebApp(control, browser_secret(settings.data_dir)).blocks


class WebApp:
    """The components and their handlers. Handlers get the session's Interview from gr.State."""

    def __init__(self, control: Control, secret: str):
        self.c = control
        deps = control.deps
        self.cited = views.cited_chunks(deps.retriever.chunks)
        self.labels = {s: spec.label for s, spec in deps.detector.specs.items()}
        self.titles = {cid: case.title for cid, case in deps.cases.items()}
        # delete_cache: gradio's copies of the report downloads go after a day.
        with gr.Blocks(title="mlsd-bot: ML system design mock interview", delete_cache=(3600, 86400)) as self.blocks:
            self.iv = gr.State(None)  # this browser session's Interview
            self.saved_sid = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=secret)
            gr.Markdown(INTRO)
            with gr.Tabs():
                with gr.Tab("Interview", id="interview"):
                    self._resume_box()
                    self._setup_screen()
                    self._talk_screen()
                    self._report_screen()
                with gr.Tab("History", id="history") as self.history_tab:
                    self._history_tab()
            self.timer = gr.Timer(CLOCK_TICK_SECONDS)
            self._wire()

    # --- layout -----------------------------------------------------------------

    def _resume_box(self) -> None:
        with gr.Column(visible=False, elem_id="resume-box") as self.resume_col:
            self.resume_md = gr.Markdown()
            self.resume_id = gr.Textbox(visible=False)  # a textbox, not State, so the API can pass an id
            with gr.Row():
                self.resume_btn = gr.Button("Resume interview", variant="primary", elem_id="resume-btn")
                self.discard_btn = gr.Button("Start a new one instead", elem_id="discard-btn")

    def _setup_screen(self) -> None:
        cases = sorted(self.titles.items(), key=lambda kv: kv[1])
        with gr.Column(elem_id="setup") as self.setup_col:
            self.case = gr.Dropdown([("Random case", RANDOM_CASE)] + [(t, cid) for cid, t in cases],
                                    value=RANDOM_CASE, label="Case study", elem_id="case")
            with gr.Row():
                self.level = gr.Radio(list(LEVELS), value="senior", label="Level", elem_id="level")
                self.minutes = gr.Slider(MIN_MINUTES, MAX_MINUTES, value=45, step=5, label="Time budget (minutes)",
                                         elem_id="minutes")
                self.voice = gr.Radio(self.c.voices, value=self.c.default_voice(), label="Interviewer voice",
                                      interactive=len(self.c.voices) > 1, elem_id="voice",
                                      info=VOICE_INFO[len(self.c.voices) > 1])
            self.start_btn = gr.Button("Start interview", variant="primary", elem_id="start")

    def _talk_screen(self) -> None:
        with gr.Row(visible=False, elem_id="talk") as self.talk_col:
            with gr.Column(scale=3):
                # Messages are escaped by views.chat_messages; sanitize_html stays on as a second guard.
                self.chat = gr.Chatbot(label="Interview", elem_id="chat", height=520, sanitize_html=True,
                                       render_markdown=True, latex_delimiters=[], allow_tags=False,
                                       feedback_options=None, buttons=["copy_all"])
                self.msg = gr.Textbox(placeholder="Your answer (Enter sends, Shift+Enter for a new line)",
                                      lines=1, max_lines=10, show_label=False, elem_id="msg")
                with gr.Row():
                    self.send_btn = gr.Button("Send", variant="primary", elem_id="send")
                    self.hint_btn = gr.Button("Hint", elem_id="hint")
                    self.next_btn = gr.Button("Next phase", elem_id="next")
                    self.end_btn = gr.Button("End interview", variant="stop", elem_id="end")
            with gr.Column(scale=1, min_width=260):
                self.talk_head = gr.Markdown(elem_id="talk-head")
                self.clock = gr.Markdown(elem_id="clock")
                self.tracker = gr.HTML(elem_id="tracker", css_template=views.TRACKER_CSS, js_on_load=None)

    def _report_screen(self) -> None:
        with gr.Column(visible=False, elem_id="report") as self.report_col:
            self.report_head = gr.HTML(elem_id="report-head", css_template=views.REPORT_CSS, js_on_load=None)
            with gr.Row():
                self.dl_md = gr.DownloadButton("Download Markdown", elem_id="dl-md")
                self.dl_html = gr.DownloadButton("Download HTML", elem_id="dl-html")
                self.new_btn = gr.Button("New interview", variant="primary", elem_id="new")
            self.report_md = gr.Markdown(elem_id="report-md")
            self.report_sources = gr.HTML(elem_id="report-sources", js_on_load=None)

    def _history_tab(self) -> None:
        self.history_table = gr.Dataframe(headers=views.HISTORY_HEADERS, interactive=False, elem_id="history-table",
                                          label="Past interviews (open an unfinished one with ?session=ID)")
        gr.Markdown("**Score per phase (0-4) over your finished interviews**")
        self.progress_plot = gr.HTML(elem_id="progress", js_on_load=None)
        self.refresh_btn = gr.Button("Refresh", elem_id="refresh-history")

    # --- events -----------------------------------------------------------------

    def _wire(self) -> None:
        opened = [self.iv, self.saved_sid, self.chat, self.talk_head, self.tracker, self.clock, *self._screens()]
        turn = [self.chat, self.tracker, self.clock, self.msg, self.talk_col, self.report_col, self.report_head,
                self.report_md, self.report_sources, self.dl_md, self.dl_html]
        self.start_btn.click(self.start, [self.case, self.level, self.minutes, self.voice], opened, api_name="start")
        gr.on([self.msg.submit, self.send_btn.click], self.send, [self.msg, self.iv], turn, api_name="send")
        self.hint_btn.click(self.hint, [self.iv], turn, api_name="hint")
        self.next_btn.click(self.next_phase, [self.iv], turn, api_name="next")
        self.end_btn.click(self.end, [self.iv], turn, api_name="end")
        self.resume_btn.click(self.resume, [self.resume_id], opened, api_name="resume")
        self.discard_btn.click(lambda: (gr.update(visible=False), None), None, [self.resume_col, self.saved_sid],
                               api_visibility="private")
        self.new_btn.click(lambda: (None, *self._show("setup")), None, [self.iv, *self._screens()],
                           api_visibility="private")
        self.blocks.load(self.on_load, [self.saved_sid], [self.resume_id, self.resume_col, self.resume_md],
                         api_visibility="private")
        gr.on([self.history_tab.select, self.refresh_btn.click], self.history, None,
              [self.history_table, self.progress_plot], api_name="history")
        self.timer.tick(self.tick, [self.iv], [self.clock], show_progress="hidden", api_visibility="private")

    def _screens(self) -> list:
        return [self.resume_col, self.setup_col, self.talk_col, self.report_col]

    def _show(self, screen: str) -> tuple:
        """Visibility updates for _screens(): only `screen` shown."""
        return tuple(gr.update(visible=name == screen) for name in SCREENS)

    # --- handlers ---------------------------------------------------------------

    def start(self, case_id: str, level: str, minutes: float, voice: str) -> Iterator[tuple]:
        try:
            iv = self.c.start(case_id, level, int(minutes), voice)
            speech = iv.open()
        except MlsdError as e:
            raise gr.Error(str(e)) from None
        for chat in self._stream(iv, speech):
            yield (iv, iv.state.session_id, chat, self._head(iv), self._tracker(iv), self._clock(iv),
                   *self._show("talk"))

    def send(self, text: str, iv: Interview | None) -> Iterator[tuple]:
        """Stream the interviewer's answer; when the interview has ended, switch to the report."""
        if iv is None:
            raise gr.Error("Start an interview first.")
        try:
            speech = SESSIONS.send(iv, text)  # one writer per session: a send while a reply streams is refused
        except MlsdError as e:  # empty or too long message, the interview is over, or a reply is still streaming
            raise gr.Error(str(e)) from None
        keep = [gr.skip()] * 7  # the report screen, until the interview ends
        for i, chat in enumerate(self._stream(iv, speech)):
            # Clear the box once, with the first update: clearing it again later would wipe
            # what the candidate has started typing while the reply streams.
            yield (chat, self._tracker(iv), self._clock(iv), gr.skip() if i else "", *keep)
        if iv.finished:
            yield (chat, self._tracker(iv), self._clock(iv), gr.skip(), *self._report(iv))

    def hint(self, iv: Interview | None) -> Iterator[tuple]:
        yield from self.send("/hint", iv)

    def next_phase(self, iv: Interview | None) -> Iterator[tuple]:
        yield from self.send("/next", iv)

    def end(self, iv: Interview | None) -> Iterator[tuple]:
        yield from self.send("/end", iv)

    def _stream(self, iv: Interview, speech: Iterator[str]) -> Iterator[list[dict]]:
        """The chat at once (reply pending), then after each piece of the reply.

        The turn being spoken is already in the state; only its words are still coming.
        """
        n, text = iv.last_turn.n, ""
        yield views.chat_messages(iv.state, self.cited, live=(n, ""))  # before a slow LLM's first word
        for piece in speech:
            text += piece
            yield views.chat_messages(iv.state, self.cited, live=(n, text))
        yield views.chat_messages(iv.state, self.cited)  # final words, with sources

    def _report(self, iv: Interview) -> tuple:
        done = self.c.finish(iv)
        return (gr.update(visible=False), gr.update(visible=True), views.report_head_html(done.report, self.labels),
                iv.report_markdown(), views.report_sources_html(done.report, self.cited),
                str(done.markdown_path), str(done.html_path))

    def on_load(self, saved_sid: str | None, request: gr.Request) -> tuple:
        """Offer to resume this browser's unfinished interview (or the one named by ?session=ID)."""
        state = self.c.resumable(request.query_params.get("session") or saved_sid)
        if state is None:
            return "", gr.update(visible=False), ""
        asked = sum(1 for t in state.turns if t.role == "candidate")
        text = (f"**You have an unfinished interview:** {views.esc(self.titles[state.case_id])} "
                f"({state.level}), now at *{PHASE_TITLES[state.phase]}*, {asked} answer(s) so far.")
        return state.session_id, gr.update(visible=True), text

    def resume(self, session_id: str) -> tuple:
        state = self.c.resumable(session_id)
        if state is None:
            raise gr.Error("That interview is finished or was not found - start a new one.")
        iv = self.c.resume(state)
        return (iv, iv.state.session_id, views.chat_messages(iv.state, self.cited), self._head(iv),
                self._tracker(iv), self._clock(iv), *self._show("talk"))

    def history(self) -> tuple:
        sessions = self.c.store.list()
        table = pd.DataFrame(views.history_rows(sessions, self.titles), columns=views.HISTORY_HEADERS)
        return table, views.progress_svg(sessions)

    def tick(self, iv: Interview | None):
        return gr.skip() if iv is None else self._clock(iv)

    # --- small views ------------------------------------------------------------

    def _head(self, iv: Interview) -> str:
        return (f"### {views.esc(iv.case.title)}\nlevel {iv.state.level} · {iv.state.budget_minutes} min · "
                f"{iv.deps.voice.label} voice")

    def _tracker(self, iv: Interview) -> str:
        return views.tracker_html(iv.state, self.labels)

    def _clock(self, iv: Interview) -> str:
        return views.clock_text(iv.time_left(), iv.finished)
