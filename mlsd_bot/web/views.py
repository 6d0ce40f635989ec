"""HTML and Markdown for the browser UI, as pure functions of the interview state.

Nothing here imports gradio, so it is testable without a browser. The chat
renders Markdown, so text that came from outside (the candidate, an LLM, the
knowledge notes) is escaped before it goes into a message: a candidate typing
`<img src=x onerror=alert(1)>` must see exactly that, as text.

Ids never reach the screen: signals show their labels, phases their titles,
cited note sections their note title and heading. Charts are SVG with a viewBox
(they scale to their column) and draw text in currentColor (the theme's text).
"""

from __future__ import annotations

import html
import re
import time
from collections import defaultdict

from ..cases import Case
from ..contract import PHASE_TITLES, PHASES, phase_signals
from ..knowledge import FACTS, Chunk
from ..report import VERDICT_TEXT, Report, bar_chart_svg, verdict
from ..retrieval import terms
from ..sessions import SessionSummary
from ..state import InterviewState

# Every character Markdown or HTML could read as markup. Candidate text turns each
# into a numeric entity: the renderer shows the character and never interprets it.
_MARKUP = frozenset("\\`*_{}[]()#+-.!|~<>&\"'$=:")
SOURCE_CHARS = 280  # one or two sentences of a cited section: the point, not a wall of text
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_KEY = re.compile(r"^`?[a-z][a-z0-9_]*`?\s*:\s+")  # "- scale: ..." facts and "- pitfall_id: ..." pushback bullets

TRACKER_CSS = """
ol { list-style: none; margin: 0; padding: 0; }
li { border-left: 4px solid var(--border-color-primary); padding: 4px 8px; margin: 0 0 6px 0; }
li.todo { opacity: .8; }
li.done { border-color: #3b9c5a; }
li.current { border-color: #3b6fd8; background: rgba(59,111,216,.10); }
.title { font-size: 14px; } .title small { margin-left: 4px; opacity: .8; }
.chips { display: flex; flex-wrap: wrap; gap: 3px; margin-top: 3px; }
.chip { font-size: 12px; padding: 1px 6px; border-radius: 9px; border: 1px solid var(--border-color-primary); }
.chip.on { background: #d5efdc; color: #1d6b36; border-color: #d5efdc; }
"""
REPORT_CSS = """
.chip { display: inline-block; font-size: 13px; padding: 1px 7px; margin: 2px; border-radius: 9px; }
.chip.on { background: #d5efdc; color: #1d6b36; } .chip.off { background: #f6dede; color: #8a2424; }
"""
LEVEL_INFO = ("mid: the core topics of each phase; senior: the optional ones too; "
              "staff: deeper follow-ups, graded strictest")


def esc(text: str) -> str:
    """Plain HTML escaping, for our own templates."""
    return html.escape(text, quote=True)


def escape_text(text: str) -> str:
    """Outside text for a Markdown renderer: every markup character becomes an entity."""
    return "".join(f"&#{ord(c)};" if c in _MARKUP else c for c in text)


# --- sources -----------------------------------------------------------------------

def cited_chunks(chunks: list[Chunk]) -> dict[str, list[Chunk]]:
    """citation ('case_studies/x.md#data') -> the chunks of that section, to show what was cited."""
    out: dict[str, list[Chunk]] = defaultdict(list)
    for c in chunks:
        out[c.citation].append(c)
    return dict(out)


def source_title(chunks: list[Chunk]) -> str:
    """'Video recommendation › Data': each chunk's first line names its note and section.

    A case note is cited by its whole phase section, so its sub-heading is left off.
    """
    if not chunks:
        return ""
    title = chunks[0].text.split("\n", 1)[0].strip()
    return " › ".join(title.split(" › ")[:2]) if chunks[0].case else title


def excerpt(chunks: list[Chunk], about: str, limit: int = SOURCE_CHARS, pair: bool = True) -> str:
    """The sentence (with `pair`, or two short ones) of a section closest to `about`, as plain text.

    Sentences come from the section's lines, bullets unwrapped and bold markers
    dropped; overlapping chunks would repeat some, so each is kept once.
    """
    sentences: list[str] = []
    for c in chunks:
        for line in c.text.split("\n")[1:]:
            line = _KEY.sub("", _BULLET.sub("", line)).replace("**", "").strip()
            if line.startswith("#"):
                continue
            sentences += [s for s in _SENTENCE.split(line) if len(s.split()) >= 5 and s not in sentences]
    if not sentences:
        return ""
    want = set(terms(about))
    best = max(range(len(sentences)), key=lambda i: (len(want & set(terms(sentences[i]))), -i))
    text = sentences[best]
    if pair and best + 1 < len(sentences) and len(text) + len(sentences[best + 1]) < limit * 0.8:
        text += " " + sentences[best + 1]
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def withheld(citation: str, cited: dict[str, list[Chunk]], finished: bool) -> bool:
    """Mid-interview a case's own notes are its worked answers: only its facts may be shown."""
    chunks = cited.get(citation) or []
    return not finished and bool(chunks) and chunks[0].case is not None and not citation.endswith(f"#{FACTS}")


def already_said(text: str, said: str) -> bool:
    """True when (nearly) every word of `text` is in `said`: quoting it gives nothing away."""
    words = set(terms(text))
    return bool(words) and len(words & set(terms(said))) >= 0.9 * len(words)


def source_item(cite: str, cited: dict[str, list[Chunk]], about: str, finished: bool) -> str:
    """One cited section: its title, and an excerpt unless it would give the answer away.

    Mid-interview a case section is quoted only where the interviewer's turn (`about`)
    already said the same thing, e.g. the counterpoint of a pushback.
    """
    chunks = cited.get(cite) or []
    name = source_title(chunks) or "A note no longer in the knowledge base"
    if not withheld(cite, cited, finished):
        body = excerpt(chunks, about)
    else:
        body = excerpt(chunks, about, pair=False)
        body = body if already_said(body, about) else (
            "The case's worked answer for this part: shown with your report, not before.")
    return f'<li><span class="src">{esc(name)}</span><blockquote>{esc(body or "(nothing to quote)")}</blockquote></li>'


def details_html(title: str, items: list[str]) -> str:
    """A collapsed list. One line, no blank lines: inside Markdown a blank line would end the HTML block."""
    return (f'<details class="mlsd-sources"><summary>{esc(title)} ({len(items)})</summary>'
            f'<ul>{"".join(items)}</ul></details>')


def sources_html(citations: list[str], cited: dict[str, list[Chunk]], about: str, finished: bool) -> str:
    """The sources of one interviewer turn; `about` (the turn's words) picks the excerpt."""
    return details_html("Sources", [source_item(c, cited, about, finished) for c in citations])


# --- the chat ----------------------------------------------------------------------

def chat_messages(state: InterviewState, cited: dict[str, list[Chunk]], live: tuple[int, str] | None = None,
                  pending: str | None = None) -> list[dict]:
    """The chat as gradio messages.

    `pending`: the candidate's message, shown before the engine has taken it.
    `live` = (turn number, text so far) for a reply being spoken; with no text yet the
    turn is left out, so the chat shows its typing indicator instead. Candidate text
    shows verbatim; interviewer text keeps Markdown (an LLM may use it) but loses raw
    HTML; sources are added once the reply is complete.
    """
    out = []
    for t in state.turns:
        if t.role == "candidate":
            out.append({"role": "user", "content": escape_text(t.text)})
            continue
        streaming = live is not None and live[0] == t.n
        if streaming and not live[1]:
            continue
        content = html.escape(live[1] if streaming else t.text, quote=False)
        if t.citations and not streaming:
            content += "\n\n" + sources_html(t.citations, cited, t.text, state.finished)
        out.append({"role": "assistant", "content": content})
    if pending is not None:
        out.append({"role": "user", "content": escape_text(pending)})
    return out


def tracker_html(state: InterviewState, labels: dict[str, str]) -> str:
    """The seven phases: done / current / to do, with each phase's signals ticked when covered.

    `data-turns` changes with every turn: the page (and its tests) can tell the update arrived.
    """
    current = PHASES.index(state.phase)
    rows = []
    for i, p in enumerate(PHASES):
        status = "done" if state.finished or i < current else "current" if i == current else "todo"
        sigs = phase_signals(p)
        chips = "".join(f'<span class="chip on">&#10003; {esc(labels[s])}</span>' if s in state.covered
                        else f'<span class="chip">{esc(labels[s])}</span>' for s in sigs)
        n = sum(s in state.covered for s in sigs)
        aria = ' aria-current="step"' if status == "current" else ""
        rows.append(f'<li class="{status}" data-phase="{p}"{aria}><div class="title"><b>{i + 1}.</b> '
                    f'{esc(PHASE_TITLES[p])}<small>{n}/{len(sigs)}</small></div><div class="chips">{chips}</div></li>')
    return f'<ol class="mlsd-tracker" data-turns="{len(state.turns)}">{"".join(rows)}</ol>'


def clock_text(seconds_left: float, finished: bool) -> str:
    """Whole minutes: the page refreshes it every few seconds, so seconds would only jump."""
    if finished:
        return "Interview finished"
    if seconds_left <= 0:
        return "Time is up - wrap up or end"
    minutes = int(seconds_left // 60)
    return f"{minutes} min left" if minutes else "under a minute left"


def status_html(state: InterviewState, case_title: str, seconds_left: float) -> str:
    """The compact bar that stays at the top while chatting: case, step n/7 and its title, the clock."""
    i = PHASES.index(state.phase)
    sigs = phase_signals(state.phase)
    done = sum(s in state.covered for s in sigs)
    late = " late" if seconds_left <= 0 and not state.finished else ""
    return (f'<div class="mlsd-status" data-phase="{state.phase}" data-turns="{len(state.turns)}">'
            f'<span class="case">{esc(case_title)}</span>'
            f'<span class="phase"><b>{i + 1}/{len(PHASES)}</b> {esc(PHASE_TITLES[state.phase])} '
            f'<small>{done}/{len(sigs)} topics</small></span>'
            f'<span class="clock{late}" role="timer">{esc(clock_text(seconds_left, state.finished))}</span></div>')


def case_info(case: Case | None) -> str:
    """What the setup screen says about the picked case (Markdown, escaped)."""
    if case is None:
        return "*A random case: its problem statement opens the interview.*"
    return f"**The problem:** {escape_text(case.problem)}"


# --- the report ------------------------------------------------------------------

def report_head_html(r: Report, labels: dict[str, str]) -> str:
    """Overall score (and what held it down), the per-phase bar chart, and the signals covered / missed."""
    chips = lambda ids, cls: "".join(f'<span class="chip {cls}">{esc(labels[s])}</span>' for s in ids) or "-"
    return (f'<div class="mlsd-report"><h2>Overall: {r.overall.score}/100 - {esc(VERDICT_TEXT[r.overall.verdict])}</h2>'
            f'<p>{esc(r.case_title or r.case)} &middot; level {esc(r.level)}</p>'
            + (f'<ul class="limits">{"".join(f"<li>{esc(x)}</li>" for x in r.limits)}</ul>' if r.limits else "")
            + f'<div id="report-chart">{bar_chart_svg(r)}</div>'
            f'<p><b>Covered:</b> {chips(r.signals.covered, "on")}</p>'
            f'<p><b>Missed:</b> {chips(r.signals.missed, "off")}</p></div>')


def report_sources_html(r: Report, cited: dict[str, list[Chunk]]) -> str:
    """The knowledge sections the feedback cites, expandable (the interview is over: nothing withheld)."""
    advice = {a.source: a.text for pr in r.phases.values() for a in pr.advice}
    items = [source_item(cite, cited, about, finished=True) for cite, about in advice.items()]
    return details_html("Sources cited in the feedback", items) if items else ""


# --- history ---------------------------------------------------------------------

def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def history_html(sessions: list[SessionSummary], titles: dict[str, str]) -> str:
    """One button per saved interview, most recently active first: a finished one opens its
    report, an unfinished one resumes. The page's script sends the clicked row's id."""
    if not sessions:
        return '<p class="mlsd-empty">No interviews yet: the ones you start are listed here.</p>'
    rows = []
    for s in sessions:
        title = esc(titles.get(s.case_id, s.case_id))
        if s.finished:
            state = (f"{s.score}/100 &middot; {esc(VERDICT_TEXT[verdict(s.score)])}" if s.score is not None
                     else "finished")
            action = "Open report"
        else:
            state, action = f"unfinished, at {esc(PHASE_TITLES.get(s.phase, s.phase))}", "Resume"
        rows.append(f'<li><button type="button" class="row" data-session="{esc(s.id)}" '
                    f'aria-label="{action}: {title}, {_date(s.updated)}">'
                    f'<span class="what"><b>{title}</b> <small>{esc(s.level)}</small></span>'
                    f'<span class="when">last active {_date(s.updated)}</span>'
                    f'<span class="state">{state}</span><span class="go">{action} &rsaquo;</span></button></li>')
    return f'<ul class="mlsd-history">{"".join(rows)}</ul>'


HISTORY_JS = """
element.addEventListener('click', (e) => {
  const row = e.target.closest('[data-session]');
  if (row) trigger('select', {session: row.dataset.session});
});
"""
MAX_POINTS = 12  # per case: the latest interviews; older ones would crowd the line
SPARK_W, SPARK_H = 300, 64
HIRE_BAR = 70  # the "hire" verdict starts here: drawn as a guide line


def progress_html(sessions: list[SessionSummary], titles: dict[str, str]) -> str:
    """The overall score (0-100) over time, one small chart per case, latest case first."""
    done = sorted((s for s in sessions if s.finished and s.score is not None), key=lambda s: s.started)
    if not done:
        return "<p class='mlsd-empty'>No finished interview yet: your overall scores will be plotted here.</p>"
    by_case: dict[str, list[SessionSummary]] = defaultdict(list)
    for s in done:
        by_case[s.case_id].append(s)
    last = done[-1]
    head = (f'<p class="summary"><b>{len(done)}</b> finished interview{"s" * (len(done) != 1)} &middot; latest '
            f'<b>{last.score}/100</b> ({esc(VERDICT_TEXT[verdict(last.score)])}) &middot; best '
            f'<b>{max(s.score for s in done)}/100</b></p>')
    cases = sorted(by_case, key=lambda c: -by_case[c][-1].started)
    items = "".join(_case_progress(titles.get(c, c), by_case[c][-MAX_POINTS:]) for c in cases)
    return f'<div class="mlsd-progress">{head}<ul>{items}</ul></div>'


def _case_progress(title: str, runs: list[SessionSummary]) -> str:
    scores = [s.score for s in runs]
    change = f", {scores[-1] - scores[0]:+d} since the first" if len(scores) > 1 else ""
    caption = f"{len(runs)} interview{'s' * (len(runs) != 1)}, latest {scores[-1]}/100{change}"
    return (f'<li><div class="case"><b>{esc(title)}</b> <small>{esc(caption)}</small></div>'
            f'{_sparkline(runs, title)}</li>')


def _sparkline(runs: list[SessionSummary], title: str) -> str:
    """Scores 0-100 left to right (oldest first), a dashed guide at the hire bar, the latest labelled."""
    left, right, top, bottom = 30, SPARK_W - 34, 6, SPARK_H - 8
    x = lambda i: left + ((right - left) * i / (len(runs) - 1) if len(runs) > 1 else (right - left) / 2)
    y = lambda v: bottom - (bottom - top) * v / 100
    pts = [(x(i), y(s.score)) for i, s in enumerate(runs)]
    parts = [f'<line x1="{left}" x2="{right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="currentColor" '
             f'stroke-opacity=".25"{dash}/>'
             f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end" fill="currentColor">{v}</text>'
             for v, dash in ((0, ""), (HIRE_BAR, ' stroke-dasharray="4 3"'), (100, ""))]
    parts.append('<polyline fill="none" stroke="#3b6fd8" stroke-width="2" points="'
                 + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
    parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="#3b6fd8"><title>{_date(s.started)}: '
              f'{s.score}/100</title></circle>' for (a, b), s in zip(pts, runs)]
    a, b = pts[-1]
    parts.append(f'<text x="{a + 7:.1f}" y="{b + 4:.1f}" font-size="12" font-weight="bold" '
                 f'fill="currentColor">{runs[-1].score}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {SPARK_W} {SPARK_H}" width="100%" '
            f'style="max-width:{SPARK_W * 1.5}px;height:auto;display:block" font-family="sans-serif" '
            f'aria-label="{esc(title)}: overall score over {len(runs)} interviews">{"".join(parts)}</svg>')
