"""The gradio UI: setup -> interview -> report screens, and a History tab.

The screens are columns shown one at a time. One `Session` per browser tab lives
in gr.State (never a module global); the `Deps` behind it are built once and
shared read-only. The engine saves each turn to SQLite before the reply is
shown, and the browser keeps its session id in gr.BrowserState, so after a
refresh or a server restart the page offers to resume.

A message goes through a chain of events, the way gr.ChatInterface does it:
a validator first (a rejected message stays in the box, with the reason next
to it; nothing else on the page changes), then `accept` clears the box and
shows the candidate's message, then `reply` streams the interviewer's answer
into the chat only (the chat's typing indicator is the only progress shown),
then `after_turn` updates the status bar and tracker, or the report when the
interview ended. The box is never an output after `accept`, so whatever the
candidate types while a reply is pending stays.

The API (gradio_client) has its own endpoints, `gr.on([])` with no browser
trigger, each running a whole step: /start, /send, /resume, /history.

Whose sessions: with a login (MLSD_USERS or MLSD_AUTH) every request acts for
its logged-in user (`gr.Request.username`); without one, for a random key the
browser keeps in local storage (a second gr.BrowserState, made on first load),
so one browser never sees another's interviews. An API client without login
gets such a key from /start (its last output) and may pass it back as
`owner_key` (to /resume or /history from another client). Every lookup goes
through `store.scoped(owner)`: another owner's session id is "not found",
word for word as an id that does not exist.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..config import Settings
from ..contract import PHASE_TITLES
from ..errors import MlsdError
from ..interview import MAX_MESSAGE_CHARS, Deps, Interview, build_deps
from ..locks import SESSIONS
from ..report import to_markdown, transcript_html
from ..sessions import open_store
from . import views
from .control import (COMMANDS, LEVELS, MAX_MINUTES, MIN_MINUTES, RANDOM_CASE, Control, Finished, browser_owner,
                      commands_text, message_problem, new_browser_key)

log = logging.getLogger("mlsd_bot.web")
STORAGE_KEY = "mlsd-bot-session"
OWNER_STORAGE_KEY = "mlsd-bot-owner"  # this browser's key (no login): whose sessions it sees
NO_KEY = "This page has not loaded completely yet: reload it, then try again."
CLOCK_TICK_SECONDS = 15  # the clock shows whole minutes
API_STREAM_EVERY = 0.1  # seconds between the API's partial chats: a reply that is ready at once is one update
SCREENS = ("notice", "setup", "talk", "report")  # the columns of the Interview tab, in _screens() order
BUSY = "The interviewer is still answering: send this once the reply is there (your text stays in the box)."

# Page-wide CSS, passed to launch() (gradio 6 takes css there).
CSS = """
.mlsd-head { display: flex; flex-wrap: wrap; gap: 0 .6em; align-items: baseline; font-size: 1.05rem; }
.mlsd-head small { opacity: .8; }
/* The chat's "clear" button would only blank the view (the interview lives on): hidden. Its status
   tracker is hidden too: the chat shows its own typing indicator while a reply is pending. */
#chat button[aria-label="Clear"], #chat > [data-testid="status-tracker"] { display: none !important; }
.mlsd-sources blockquote { font-size: .9em; margin: 4px 0 8px; padding-left: 8px;
  border-left: 3px solid var(--border-color-primary); }
.mlsd-sources ul { padding-left: 1.1em; margin: 4px 0; }
.mlsd-sources .src { font-weight: 600; font-size: .9em; }
/* The phase and the clock stay in view while the page scrolls (phones). gradio's container hides
   overflow, which would make it the sticky bar's scroller; "clip" cuts the same without scrolling. */
.gradio-container { overflow: clip !important; }
#status { position: sticky; top: 0; z-index: 20; background: var(--background-fill-primary);
  padding: 6px 2px; border-bottom: 1px solid var(--border-color-primary); }
#talk, #talk-row, #talk-row > div { overflow: visible !important; }
#compose { align-items: flex-end; flex-wrap: nowrap; gap: 8px; }
#compose #send { min-width: 72px; max-width: 110px; }
#msg-count { font-size: .85em; opacity: .85; text-align: right; }
#msg-count.over { color: var(--error-text-color); opacity: 1; font-weight: 600; }
#actions button { min-width: 0; }
#confirm-end { border: 1px solid var(--error-border-color); border-radius: var(--radius-lg); padding: 8px; }
#report-chart { max-width: 520px; }
/* Narrow screens: table cells wrap between words, never inside one. */
#report-md table { font-size: .92em; }
#report-md th, #report-md td { word-break: normal; overflow-wrap: normal; hyphens: auto; padding: 4px 6px; }
.mlsd-transcript ol { list-style: none; padding: 0; }
.mlsd-transcript li { margin: 0 0 .7em; padding: .4em .7em; border-left: 3px solid var(--border-color-primary); }
.mlsd-transcript li.candidate { border-color: #3b6fd8; }
.mlsd-transcript .said { white-space: pre-wrap; overflow-wrap: anywhere; }
.mlsd-transcript small { opacity: .85; }
"""
STATUS_CSS = """
.mlsd-status { display: flex; flex-wrap: wrap; gap: 2px 14px; align-items: baseline; font-size: 14px; }
.case { font-weight: 600; } .phase small { opacity: .85; }
.clock { margin-left: auto; font-weight: 600; } .clock.late { color: var(--error-text-color); }
@media (max-width: 640px) { .case { display: none; } .mlsd-status { font-size: 13px; gap: 2px 8px; } }
"""
HISTORY_CSS = """
ul { list-style: none; margin: 0; padding: 0; }
li { margin: 0 0 8px; }
.row { width: 100%; text-align: left; display: grid; grid-template-columns: 1fr auto; gap: 2px 12px;
  padding: 10px 12px; border-radius: var(--radius-lg); border: 1px solid var(--border-color-primary);
  background: var(--block-background-fill); color: var(--body-text-color); cursor: pointer; font: inherit; }
.row:hover, .row:focus-visible { border-color: var(--color-accent); }
.when, .state { font-size: 13px; } .go { grid-row: 1 / span 2; grid-column: 2; align-self: center; font-weight: 600; }
"""
PROGRESS_CSS = """
ul { list-style: none; margin: 0; padding: 0; display: grid; gap: 14px;
  grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); }
.case small { opacity: .85; } .summary { margin: 0 0 10px; }
"""
FOCUS_JS = "() => { document.querySelector('#msg textarea')?.focus(); }"
# The visible limit: updated in the browser on every change of the box (typing, paste, clear).
COUNT_JS = f"""(text) => {{
  const el = document.getElementById('msg-count'); if (!el) return;
  const n = (text || '').trim().length, max = {MAX_MESSAGE_CHARS};
  el.textContent = n.toLocaleString('en') + ' / ' + max.toLocaleString('en') + ' characters' +
    (n > max ? ' - too long, please split it' : '');
  el.classList.toggle('over', n > max);
}}"""
# run_history would keep every answer in the browser's storage: off.
LAUNCH_OPTIONS = {"css": CSS, "run_history": False}
INTRO = ("Pick a case and talk it through as in a real round. The interviewer follows the 7-step framework "
         "(requirements, framing, data, model, evaluation, serving, monitoring), asks follow-ups and pushes back; "
         "at the end you get a scored report. Commands in the chat: "
         + "; ".join(f"**{c}** {what}" for c, what in COMMANDS.items()) + ".")
VOICE_INFO = "offline: the scripted interviewer; llm: the configured chat model words the same questions"


@dataclass
class Session:
    """One browser tab's interview. `pending` carries an accepted message to the reply step;
    `busy` is set from accepting a message until its reply is spoken (a second message
    then would race the first, so it is refused and stays in the box). `owner`: whose interview
    it is (the user, or the browser's owner name); it is saved under that owner only."""
    iv: Interview
    owner: str
    busy: bool = False
    pending: str = ""


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
    store = open_store(settings)  # SQLite, or PostgreSQL shared by several app processes
    SESSIONS.across = store.lock  # one writer per session across those processes too
    control = Control(deps, store, out_dir)
    login = bool(settings.auth or settings.users_file)
    return WebApp(control, browser_secret(settings.data_dir), login).blocks


class WebApp:
    """The components and their handlers. `login`: gradio asks for a login (sessions per user);
    otherwise sessions are per browser key."""

    def __init__(self, control: Control, secret: str, login: bool = False):
        self.c, self.login = control, login
        deps = control.deps
        self.cited = views.cited_chunks(deps.retriever.chunks)
        self.labels = {s: spec.label for s, spec in deps.detector.specs.items()}
        self.titles = {cid: case.title for cid, case in deps.cases.items()}
        # delete_cache: gradio's copies of the report downloads go after a day.
        with gr.Blocks(title="mlsd-bot: ML system design mock interview", delete_cache=(3600, 86400)) as self.blocks:
            self.sess = gr.State(None)  # this tab's Session
            self.saved_sid = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=secret)
            # The browser's key (no login): sent with every browser event, made by on_load on a first visit.
            self.browser_key = gr.BrowserState(None, storage_key=OWNER_STORAGE_KEY, secret=secret)
            self.key = gr.State(None)  # an API client's key (it has no local storage)
            self.owner_key = gr.Textbox(visible=False, label="owner_key")  # the API's view of the key
            gr.HTML('<div class="mlsd-head"><b>mlsd-bot</b><small>ML system design mock interview</small></div>',
                    js_on_load=None)
            with gr.Tabs(selected="interview") as self.tabs:
                with gr.Tab("Interview", id="interview"):
                    self._notice_box()
                    self._setup_screen()
                    self._talk_screen()
                    self._report_screen()
                with gr.Tab("History", id="history") as self.history_tab:
                    self._history_tab()
            self.timer = gr.Timer(CLOCK_TICK_SECONDS)
            self._wire_api()  # first: the API endpoints get the plain names (/start, /send ...)
            self._wire()

    # --- layout -----------------------------------------------------------------

    def _notice_box(self) -> None:
        """Shown on load: an unfinished interview to resume, a finished one to open, or a bad link."""
        with gr.Column(visible=False, elem_id="notice") as self.notice_col:
            self.notice_md = gr.Markdown()
            self.notice_id = gr.Textbox(visible=False)
            with gr.Row():
                self.open_btn = gr.Button("Resume interview", variant="primary", elem_id="resume-btn")
                self.dismiss_btn = gr.Button("Start a new one instead", elem_id="discard-btn")

    def _setup_screen(self) -> None:
        cases = sorted(self.titles.items(), key=lambda kv: kv[1])
        several_voices = len(self.c.voices) > 1
        with gr.Column(elem_id="setup") as self.setup_col:
            gr.Markdown(INTRO)
            self.case = gr.Dropdown([("Random case", RANDOM_CASE)] + [(t, cid) for cid, t in cases],
                                    value=RANDOM_CASE, label="Case study", elem_id="case")
            self.case_md = gr.Markdown(views.case_info(None), elem_id="case-info")
            with gr.Row():
                self.level = gr.Radio(list(LEVELS), value="senior", label="Level", info=views.LEVEL_INFO,
                                      elem_id="level")
                self.minutes = gr.Slider(MIN_MINUTES, MAX_MINUTES, value=45, step=5, label="Time budget (minutes)",
                                         elem_id="minutes")
            # With one voice there is nothing to choose: the radio is not shown at all.
            self.voice = gr.Radio(self.c.voices, value=self.c.default_voice(), label="Interviewer voice",
                                  visible=several_voices, info=VOICE_INFO, elem_id="voice")
            self.start_btn = gr.Button("Start interview", variant="primary", elem_id="start")

    def _talk_screen(self) -> None:
        with gr.Column(visible=False, elem_id="talk") as self.talk_col:
            self.status = gr.HTML(elem_id="status", css_template=STATUS_CSS, js_on_load=None)
            with gr.Row(elem_id="talk-row"):
                with gr.Column(scale=3, min_width=300):
                    # Messages are escaped by views.chat_messages; sanitize_html stays on as a second guard.
                    # Its height leaves room for the status bar and the box on a phone (Send stays on screen).
                    self.chat = gr.Chatbot(label="Interview", show_label=False, elem_id="chat", min_height=280,
                                           height="min(560px, calc(100dvh - 320px))", sanitize_html=True,
                                           render_markdown=True,
                                           latex_delimiters=[], allow_tags=False, feedback_options=None,
                                           buttons=["copy_all"], placeholder="The interviewer is reading the case...")
                    with gr.Row(elem_id="compose"):
                        self.msg = gr.Textbox(placeholder="Your answer (Enter sends, Shift+Enter for a new line)",
                                              lines=1, max_lines=8, label="Your answer", show_label=False,
                                              elem_id="msg", scale=5, min_width=160)
                        self.send_btn = gr.Button("Send", variant="primary", elem_id="send", scale=0, min_width=72)
                    gr.HTML(f'<div id="msg-count" aria-live="polite">0 / {MAX_MESSAGE_CHARS:,} characters</div>',
                            js_on_load=None)
                    with gr.Row(elem_id="actions"):
                        self.hint_btn = gr.Button("Hint", size="sm", elem_id="hint", min_width=60)
                        self.next_btn = gr.Button("Next phase", size="sm", elem_id="next", min_width=60)
                        self.end_btn = gr.Button("End interview...", size="sm", elem_id="end", min_width=60)
                    with gr.Column(visible=False, elem_id="confirm-end") as self.confirm_col:
                        gr.Markdown("**End the interview now?** You get your report; this interview cannot "
                                    "be continued afterwards.")
                        with gr.Row():
                            self.end_yes = gr.Button("Yes, end it and show my report", variant="stop", size="sm",
                                                     elem_id="end-yes")
                            self.end_no = gr.Button("Keep going", size="sm", elem_id="end-no")
                with gr.Column(scale=1, min_width=260, elem_id="side"):
                    self.talk_info = gr.Markdown(elem_id="talk-info")
                    self.tracker = gr.HTML(elem_id="tracker", css_template=views.TRACKER_CSS, js_on_load=None)

    def _report_screen(self) -> None:
        with gr.Column(visible=False, elem_id="report") as self.report_col:
            self.report_head = gr.HTML(elem_id="report-head", css_template=views.REPORT_CSS, js_on_load=None)
            with gr.Row():
                self.dl_md = gr.DownloadButton("Download Markdown", elem_id="dl-md", min_width=120)
                self.dl_html = gr.DownloadButton("Download HTML", elem_id="dl-html", min_width=120)
                self.new_btn = gr.Button("New interview", variant="primary", elem_id="new", min_width=120)
            self.report_md = gr.Markdown(elem_id="report-md")
            self.report_sources = gr.HTML(elem_id="report-sources", js_on_load=None)
            self.transcript = gr.HTML(elem_id="transcript", js_on_load=None)

    def _history_tab(self) -> None:
        gr.Markdown("**Your interviews**: open a finished one's report, or resume an unfinished one.")
        self.history_list = gr.HTML(elem_id="history-list", css_template=HISTORY_CSS, js_on_load=views.HISTORY_JS)
        gr.Markdown("**Overall score over time, per case**")
        self.progress = gr.HTML(elem_id="progress", css_template=PROGRESS_CSS, js_on_load=None)
        self.refresh_btn = gr.Button("Refresh", elem_id="refresh-history")

    # --- output groups ------------------------------------------------------------

    def _screens(self) -> list:
        return [self.notice_col, self.setup_col, self.talk_col, self.report_col]

    def _report_outputs(self) -> list:
        return [self.report_head, self.report_md, self.report_sources, self.transcript, self.dl_md, self.dl_html]

    def _opened_outputs(self) -> list:
        """What opening an interview (new, resumed or finished) sets, in _opened() order."""
        return [self.sess, self.saved_sid, self.chat, self.status, self.tracker, self.talk_info, self.confirm_col,
                *self._screens(), *self._report_outputs(), self.tabs]

    def _after_outputs(self) -> list:
        return [self.status, self.tracker, *self._screens(), *self._report_outputs()]

    def _show(self, screen: str) -> tuple:
        """Visibility updates for _screens(): only `screen` shown."""
        return tuple(gr.update(visible=name == screen) for name in SCREENS)

    # --- events -----------------------------------------------------------------

    def _wire(self) -> None:
        private = {"api_visibility": "private"}
        chat_progress = {"show_progress": "minimal", "show_progress_on": [self.chat]}  # the typing indicator
        quiet = {"show_progress": "hidden"}

        def then_update(event) -> None:
            """After a turn was spoken: status bar and tracker (or the report), then focus the box."""
            (event.then(self.after_turn, [self.sess], self._after_outputs(), **quiet, **private)
             .then(None, js=FOCUS_JS))

        start = self.start_btn.click(self.start, [self.case, self.level, self.minutes, self.voice,
                                                  self.browser_key],
                                     self._opened_outputs(), **quiet, **private)
        then_update(start.success(self.opening, [self.sess], [self.chat], **chat_progress, **private))

        def turn(accepted) -> None:
            """reply -> after_turn -> focus, after a message or command was accepted."""
            then_update(accepted.success(self.reply, [self.sess], [self.chat], **chat_progress, **private))

        turn(gr.on([self.msg.submit, self.send_btn.click], self.accept, [self.msg, self.sess], [self.msg, self.chat],
                   validator=self.check_message, **quiet, **private))
        for button, command in ((self.hint_btn, "/hint"), (self.next_btn, "/next"), (self.end_yes, "/end")):
            # The box is an input only so the validator can show its message there; it is left as it is.
            turn(button.click(self._command(command), [self.msg, self.sess], [self.chat, self.confirm_col],
                              validator=self.check_command, **quiet, **private))
        self.end_btn.click(lambda: gr.update(visible=True), None, [self.confirm_col], **quiet, **private)
        self.end_no.click(lambda: gr.update(visible=False), None, [self.confirm_col], **quiet, **private).then(
            None, js=FOCUS_JS)
        self.msg.change(None, [self.msg], None, js=COUNT_JS)  # browser only: the counter

        self.case.change(self.describe_case, [self.case], [self.case_md], **quiet, **private)
        self.open_btn.click(self.open_session, [self.notice_id, self.browser_key], self._opened_outputs(), **quiet,
                            **private)
        self.dismiss_btn.click(lambda: (gr.update(visible=False), None), None, [self.notice_col, self.saved_sid],
                               **quiet, **private)
        self.new_btn.click(lambda: (None, *self._show("setup")), None, [self.sess, *self._screens()], **quiet,
                           **private)
        self.blocks.load(self.on_load, [self.saved_sid, self.browser_key],
                         [self.notice_id, self.notice_col, self.notice_md, self.open_btn, self.browser_key],
                         **private)
        gr.on([self.history_tab.select, self.refresh_btn.click], self.history, [self.browser_key],
              [self.history_list, self.progress], **quiet, **private)
        self.history_list.select(self.open_from_history, [self.browser_key], self._opened_outputs(), **quiet, **private)
        self.timer.tick(self.tick, [self.sess], [self.status], **quiet, **private)

    def _wire_api(self) -> None:
        """Endpoints for gradio_client: no browser trigger, each runs a whole step."""
        gr.on([], self.api_start, [self.case, self.level, self.minutes, self.voice, self.owner_key, self.key],
              [self.sess, self.saved_sid, self.chat, self.status, self.tracker, self.key, self.owner_key],
              api_name="start")
        gr.on([], self.api_send, [self.msg, self.sess],
              [self.chat, self.status, self.tracker, self.report_head, self.report_md, self.transcript,
               self.dl_md, self.dl_html], api_name="send")
        gr.on([], self.api_resume, [self.notice_id, self.owner_key, self.key],
              [self.sess, self.saved_sid, self.chat, self.status, self.tracker, self.key], api_name="resume")
        gr.on([], self.api_history, [self.owner_key, self.key], [self.history_list, self.progress, self.key],
              api_name="history")

    # --- validation -------------------------------------------------------------------

    def _refusal(self, sess: Session | None) -> tuple[str, str] | None:
        """Why no message can be taken right now, whatever it says."""
        if sess is None:
            return "no_interview", "Start an interview first."
        if sess.iv.finished:
            return "finished", "This interview has ended - start a new one to practise again."
        if sess.busy:
            return "busy", BUSY
        return None

    def _refused(self, problem: tuple[str, str] | None, sess: Session | None) -> str:
        """One log line per rejected message (never its text), and the message for the candidate."""
        if problem is None:
            return ""
        log.info("rejected a message (%s) in session %s", problem[0], sess.iv.state.session_id if sess else "-")
        return problem[1]

    def check_message(self, text: str, sess: Session | None) -> list:
        """The validator of a typed message: its reason shows by the box, and the text stays there."""
        why = self._refused(self._refusal(sess) or message_problem(text), sess)
        return [gr.validate(not why, why), gr.validate(True, "")]

    def check_command(self, text: str, sess: Session | None) -> list:
        why = self._refused(self._refusal(sess), sess)
        return [gr.validate(not why, why), gr.validate(True, "")]

    # --- the conversation ----------------------------------------------------------

    def start(self, case_id: str, level: str, minutes: float, voice: str, key: str | None,
              request: gr.Request) -> tuple:
        """A new interview: the talk screen at once; `opening` then streams the first question."""
        owner = self._owner(request, key)
        if owner is None:
            raise gr.Error(NO_KEY, print_exception=False)
        try:
            iv = self.c.start(case_id, level, int(minutes), voice, owner)
        except MlsdError as e:
            raise gr.Error(str(e), print_exception=False) from None
        return self._opened(Session(iv, owner, busy=True), chat=[])  # busy until the opening question is spoken

    def opening(self, sess: Session) -> Iterator[list]:
        try:
            yield from self._stream(sess.iv, sess.iv.open())
        finally:
            sess.busy = False

    def accept(self, text: str, sess: Session) -> tuple:
        """The message passed the validator: clear the box and show the message, before any reply."""
        sess.pending, sess.busy = text.strip(), True
        return "", views.chat_messages(sess.iv.state, self.cited, pending=sess.pending)

    def _command(self, command: str) -> Callable:
        def accept_command(_text: str, sess: Session) -> tuple:
            sess.pending, sess.busy = command, True
            return views.chat_messages(sess.iv.state, self.cited, pending=command), gr.update(visible=False)
        return accept_command

    def reply(self, sess: Session) -> Iterator[list]:
        """The interviewer's answer to the accepted message, streamed into the chat."""
        text, sess.pending = sess.pending, ""
        try:
            yield from self._stream(sess.iv, SESSIONS.send(sess.iv, text))
        except MlsdError as e:  # the validator checked first, so this is rare (e.g. a second tab ended it)
            gr.Warning(str(e))
            yield views.chat_messages(sess.iv.state, self.cited)
        finally:
            sess.busy = False

    def _stream(self, iv: Interview, speech: Iterator[str]) -> Iterator[list]:
        """The chat after each piece of the reply; nothing before the first piece, so the chat's
        typing indicator shows while a slow LLM thinks. Sources come with the final words."""
        n, text = iv.last_turn.n, ""
        for piece in speech:
            text += piece
            if text.strip():
                yield views.chat_messages(iv.state, self.cited, live=(n, text))
        yield views.chat_messages(iv.state, self.cited)

    def after_turn(self, sess: Session | None) -> tuple:
        """Status bar and tracker after a turn; the report screen when the interview has ended."""
        if sess is None:
            return tuple(gr.skip() for _ in self._after_outputs())
        iv = sess.iv
        head = (self._status(iv), self._tracker(iv))
        if not iv.finished:
            return (*head, *(gr.skip() for _ in range(len(SCREENS) + len(self._report_outputs()))))
        return (*head, *self._show("report"), *self._report(self.c.finish(iv, sess.owner)))

    # --- opening saved interviews ----------------------------------------------------

    def on_load(self, saved_sid: str | None, stored_key: str | None, request: gr.Request) -> tuple:
        """This browser's key (made on its first visit, without login), then the notice: a link
        with ?session=ID, or this browser's unfinished interview, said what it is and offered."""
        if self.login:
            key, keep = None, gr.skip()
        else:
            key = stored_key if browser_owner(stored_key) else new_browser_key()
            keep = key if key != stored_key else gr.skip()
        return (*self._notice(request.query_params.get("session"), saved_sid, self._owner(request, key)), keep)

    def _notice(self, asked: str | None, saved_sid: str | None, owner: str | None) -> tuple:
        """The notice box's (id, box, text, button) for a linked or remembered interview of `owner`."""
        state = self.c.lookup(asked or saved_sid, owner) if owner else None
        if asked and state is None:
            # The id as text (<code>, not a Markdown code span, where the entities would show).
            return ("", gr.update(visible=True),
                    f"**No saved interview <code>{views.escape_text(asked[:40])}</code> here.** The link may be "
                    "wrong, or from another browser, user or machine: start a new interview below.",
                    gr.update(visible=False))
        if state is None or (state.finished and not asked):
            return "", gr.update(visible=False), "", gr.update()
        title = views.esc(self.titles[state.case_id])
        if state.finished:
            return (state.session_id, gr.update(visible=True), f"**That interview is finished:** {title} "
                    f"({state.level}). Its report and transcript are saved.", gr.update(value="Open its report",
                                                                                            visible=True))
        answers = len(state.candidate_turns())
        text = (f"**You have an unfinished interview:** {title} ({state.level}), now at "
                f"*{PHASE_TITLES[state.phase]}*, {answers} answer(s) so far.")
        return state.session_id, gr.update(visible=True), text, gr.update(value="Resume interview", visible=True)

    def open_session(self, session_id: str, key: str | None, request: gr.Request) -> tuple:
        """Resume an unfinished interview, or show a finished one's report and transcript."""
        owner = self._owner(request, key)
        state = self.c.lookup(session_id, owner) if owner else None
        if state is None:
            gr.Warning("That interview was not found - start a new one.")
            return tuple(gr.skip() for _ in self._opened_outputs())
        if not state.finished:
            return self._opened(Session(self.c.resume(state, owner), owner))
        done = self.c.reopen(state, owner)
        if done is None:
            gr.Warning("That interview has no saved report.")
            return tuple(gr.skip() for _ in self._opened_outputs())
        empty = (None, gr.skip(), [], "", "", "", gr.update(visible=False))
        return (*empty, *self._show("report"), *self._report(done), gr.Tabs(selected="interview"))

    def open_from_history(self, key: str | None, evt: gr.EventData, request: gr.Request) -> tuple:
        session_id = str(evt._data.get("session", "")) if isinstance(evt._data, dict) else ""
        return self.open_session(session_id, key, request)

    def _opened(self, sess: Session, chat: list | None = None) -> tuple:
        iv = sess.iv
        chat = views.chat_messages(iv.state, self.cited) if chat is None else chat
        return (sess, iv.state.session_id, chat, self._status(iv), self._tracker(iv), self._info(iv),
                gr.update(visible=False), *self._show("talk"), *(gr.skip() for _ in self._report_outputs()),
                gr.Tabs(selected="interview"))

    def _report(self, done: Finished) -> tuple:
        return (views.report_head_html(done.report, self.labels), to_markdown(done.report),
                views.report_sources_html(done.report, self.cited), transcript_html(done.state.turns),
                str(done.markdown_path), str(done.html_path))

    # --- small views and helpers -------------------------------------------------------

    def describe_case(self, case_id: str) -> str:
        return views.case_info(self.c.deps.cases.get(case_id))

    def history(self, key: str | None, request: gr.Request) -> tuple:
        """The History tab: this user's (or this browser's) interviews only."""
        owner = self._owner(request, key)
        sessions = self.c.history(owner) if owner else []
        return views.history_html(sessions, self.titles), views.progress_html(sessions, self.titles)

    def _owner(self, request: gr.Request, key: str | None) -> str | None:
        """Whom a request acts for: the logged-in user, or (no login) the owner of the browser key;
        None when there is neither (nothing is then found, nothing can be started)."""
        if self.login:
            return getattr(request, "username", None) or None
        return browser_owner(key)

    def tick(self, sess: Session | None):
        return gr.skip() if sess is None else self._status(sess.iv)

    def _info(self, iv: Interview) -> str:
        return (f"**{views.esc(iv.case.title)}**  \nlevel {iv.state.level} · {iv.state.budget_minutes} min · "
                f"{iv.deps.voice.label} voice  \nCommands: {views.escape_text(commands_text())}")

    def _status(self, iv: Interview) -> str:
        return views.status_html(iv.state, iv.case.title, iv.time_left())

    def _tracker(self, iv: Interview) -> str:
        return views.tracker_html(iv.state, self.labels)

    # --- the API (gradio_client) ----------------------------------------------------------

    def _api_key(self, given: str | None, held: str | None, mint: bool = False) -> str | None:
        """The browser key an API call acts under (no login): the `owner_key` it passes, else the one
        this client already holds, else (with `mint`) a new one. A malformed key is refused."""
        if self.login:
            return None
        key = (given or "").strip() or held
        if key is None and mint:
            key = new_browser_key()
        if key is not None and browser_owner(key) is None:
            raise gr.Error("owner_key is not a key that /start returned.", print_exception=False)
        return key

    def api_start(self, case_id: str, level: str, minutes: float, voice: str, owner_key: str | None = None,
                  held: str | None = None, request: gr.Request = None) -> Iterator[tuple]:
        """A new interview, its opening streamed; the last output is the client's owner key (no login)."""
        key = self._api_key(owner_key, held, mint=True)
        sess = self.start(case_id, level, minutes, voice, key, request)[0]
        for chat in self.opening(sess):
            yield (sess, sess.iv.state.session_id, chat, self._status(sess.iv), self._tracker(sess.iv), key,
                   key or "")

    def api_send(self, text: str, sess: Session | None, request: gr.Request = None) -> Iterator[tuple]:
        """A message or command, its streamed reply, then the status; the report once it ended."""
        if sess is not None and self.login and sess.owner != getattr(request, "username", None):
            sess = None  # never another user's interview, whatever this client's state holds
        why = self._refused(self._refusal(sess) or message_problem(text), sess)
        if why:
            raise gr.Error(why, print_exception=False)
        self.accept(text, sess)
        # Not gr.skip(): gradio rebuilds a component and its schema for every skipped output of every
        # chunk (most of a turn's CPU). The API's client reads the status and report once at the end.
        keep = (None,) * 5
        # The last chat (the final words with their sources) goes out with the status, not as an
        # update of its own: every update costs gradio a postprocess of each output.
        # Partial chats go out at most every API_STREAM_EVERY seconds, so a slow LLM still streams
        # while an offline reply (ready at once) costs one update, not one per piece.
        chat, sent = None, time.monotonic()
        for later in self.reply(sess):
            if chat is not None and time.monotonic() - sent >= API_STREAM_EVERY:
                yield (chat, None, None, *keep)
                sent = time.monotonic()
            chat = later
        status, tracker = self._status(sess.iv), self._tracker(sess.iv)
        if not sess.iv.finished:
            yield (chat, status, tracker, *keep)
            return
        head, md, _, transcript, dl_md, dl_html = self._report(self.c.finish(sess.iv, sess.owner))
        yield chat, status, tracker, head, md, transcript, dl_md, dl_html

    def api_resume(self, session_id: str, owner_key: str | None = None, held: str | None = None,
                   request: gr.Request = None) -> tuple:
        """Continue one of this client's (or user's) unfinished interviews; any other id is 'not found'."""
        key = self._api_key(owner_key, held)
        owner = self._owner(request, key)
        state = self.c.resumable(session_id, owner) if owner else None
        if state is None:
            raise gr.Error("That interview is finished or was not found - start a new one.", print_exception=False)
        sess = Session(self.c.resume(state, owner), owner)
        return (sess, session_id, views.chat_messages(sess.iv.state, self.cited), self._status(sess.iv),
                self._tracker(sess.iv), key)

    def api_history(self, owner_key: str | None = None, held: str | None = None, request: gr.Request = None) -> tuple:
        """The History tab's list and progress chart, of this client's key (or user) only."""
        key = self._api_key(owner_key, held)
        return (*self.history(key, request), key)
