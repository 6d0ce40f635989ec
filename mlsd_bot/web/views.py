"""HTML and Markdown for the browser UI, as pure functions of the interview state.

Nothing here imports gradio, so it is testable without a browser. The chat
renders Markdown, so text that came from outside (the candidate, an LLM, the
knowledge notes) is escaped before it goes into a message: a candidate typing
`<img src=x onerror=alert(1)>` must see exactly that, as text.
"""

from __future__ import annotations

import html
import time
from collections import defaultdict

from ..contract import PHASE_TITLES, PHASES, phase_signals
from ..knowledge import Chunk
from ..report import VERDICT_TEXT, Report, bar_chart_svg
from ..sessions import SessionSummary
from ..state import InterviewState

# Every character Markdown or HTML could read as markup. Candidate text turns each
# into a numeric entity: the renderer shows the character and never interprets it.
_MARKUP = frozenset("\\`*_{}[]()#+-.!|~<>&\"'$=:")
SOURCE_CHARS = 900  # per cited section: enough to read the point, not a wall of text

TRACKER_CSS = """
ol { list-style: none; margin: 0; padding: 0; }
li { border-left: 4px solid #d0d4dc; padding: 4px 8px; margin: 0 0 6px 0; opacity: .75; }
li.done { border-color: #3b9c5a; opacity: .9; }
li.current { border-color: #3b6fd8; background: rgba(59,111,216,.08); opacity: 1; }
.title { font-size: 14px; } .title small { color: #777; margin-left: 4px; }
.chips { display: flex; flex-wrap: wrap; gap: 3px; margin-top: 3px; }
.chip { font-size: 11px; padding: 1px 6px; border-radius: 9px; background: #eceef2; color: #555; }
.chip.on { background: #d5efdc; color: #1d6b36; }
"""
REPORT_CSS = """
.chip { display: inline-block; font-size: 12px; padding: 1px 7px; margin: 2px; border-radius: 9px; }
.chip.on { background: #d5efdc; color: #1d6b36; } .chip.off { background: #f6dede; color: #8a2424; }
"""


def esc(text: str) -> str:
    """Plain HTML escaping, for our own templates."""
    return html.escape(text, quote=True)


def escape_text(text: str) -> str:
    """Outside text for a Markdown renderer: every markup character becomes an entity."""
    return "".join(f"&#{ord(c)};" if c in _MARKUP else c for c in text)


def cited_chunks(chunks: list[Chunk]) -> dict[str, list[Chunk]]:
    """citation ('case_studies/x.md#data') -> the chunks of that section, to show what was cited."""
    out: dict[str, list[Chunk]] = defaultdict(list)
    for c in chunks:
        out[c.citation].append(c)
    return dict(out)


def sources_html(citations: list[str], cited: dict[str, list[Chunk]], title: str = "Sources") -> str:
    """A collapsed <details> block: each citation with the text of its section.

    One line, no blank lines: inside Markdown a blank line would end the HTML block.
    """
    items = []
    for cite in citations:
        # Whitespace collapsed and bold markers dropped: the section is shown as plain text.
        text = " ".join(" ".join(c.text for c in cited.get(cite, [])).split()).replace("**", "")
        if len(text) > SOURCE_CHARS:
            text = text[:SOURCE_CHARS].rsplit(" ", 1)[0] + " ..."
        items.append(f"<li><code>{esc(cite)}</code><blockquote>{esc(text or '(section not in the index)')}</blockquote></li>")
    return (f'<details class="mlsd-sources"><summary>{esc(title)} ({len(citations)})</summary>'
            f'<ul>{"".join(items)}</ul></details>')


def chat_messages(state: InterviewState, cited: dict[str, list[Chunk]], live: tuple[int, str] | None = None) -> list[dict]:
    """The chat as gradio messages. `live` = (turn number, text so far) for a reply being streamed.

    Candidate text shows verbatim. Interviewer text keeps Markdown (an LLM may use
    it) but loses raw HTML; sources are added once the reply is complete.
    """
    out = []
    for t in state.turns:
        if t.role == "candidate":
            out.append({"role": "user", "content": escape_text(t.text)})
            continue
        streaming = live is not None and live[0] == t.n
        content = html.escape((live[1] or "...") if streaming else t.text, quote=False)
        if t.citations and not streaming:
            content += "\n\n" + sources_html(t.citations, cited)
        out.append({"role": "assistant", "content": content})
    return out


def tracker_html(state: InterviewState, labels: dict[str, str]) -> str:
    """The seven phases: done / current / to do, with each phase's signals ticked when covered."""
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
    return f'<ol class="mlsd-tracker">{"".join(rows)}</ol>'


def clock_text(seconds_left: float, finished: bool) -> str:
    """Whole minutes: the page refreshes it every few seconds, so seconds would only jump."""
    if finished:
        return "**Interview finished**"
    if seconds_left <= 0:
        return "**Time is up** - wrap up, or press *End interview*"
    minutes = int(seconds_left // 60)
    return f"**{minutes} min** left" if minutes else "**under a minute** left"


# --- the report ------------------------------------------------------------------

def report_head_html(r: Report, labels: dict[str, str]) -> str:
    """Overall score, the per-phase bar chart, and the signals covered / missed."""
    chips = lambda ids, cls: "".join(f'<span class="chip {cls}">{esc(labels[s])}</span>' for s in ids) or "-"
    return (f'<div class="mlsd-report"><h2>Overall: {r.overall.score}/100 - {esc(VERDICT_TEXT[r.overall.verdict])}</h2>'
            f'<p>{esc(r.case_title or r.case)} &middot; level {esc(r.level)}</p>'
            f'<div id="report-chart">{bar_chart_svg(r)}</div>'
            f'<p><b>Covered:</b> {chips(r.signals.covered, "on")}</p>'
            f'<p><b>Missed:</b> {chips(r.signals.missed, "off")}</p></div>')



def report_sources_html(r: Report, cited: dict[str, list[Chunk]]) -> str:
    """The knowledge sections the feedback cites, expandable."""
    cites = list(dict.fromkeys(a.source for pr in r.phases.values() for a in pr.advice))
    return sources_html(cites, cited, title="Sources cited in the feedback") if cites else ""


# --- history ---------------------------------------------------------------------

HISTORY_HEADERS = ["Date", "Case", "Level", "Status", "Score", "Session"]


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def history_rows(sessions: list[SessionSummary], titles: dict[str, str]) -> list[list]:
    """One row per saved interview, newest first (as the store lists them)."""
    return [[_date(s.started), titles.get(s.case_id, s.case_id), s.level,
             "finished" if s.finished else f"unfinished ({s.phase})", "" if s.score is None else s.score, s.id]
            for s in sessions]


PHASE_COLORS = ("#3b6fd8", "#e07b39", "#3b9c5a", "#9c4fd8", "#c9a227", "#2aa7b8", "#c43b5a")
MAX_POINTS = 20  # the latest interviews; older ones would crowd the axis


def progress_svg(sessions: list[SessionSummary], width: int = 760, height: int = 320) -> str:
    """Per-phase scores (0-4) of the finished interviews, oldest to newest, one line per phase."""
    done = sorted((s for s in sessions if s.finished and s.phase_scores), key=lambda s: s.started)[-MAX_POINTS:]
    if not done:
        return "<p>No finished interview yet: your per-phase scores will be plotted here.</p>"
    left, top, w, h = 34, 12, width - 80, height - 120
    x = lambda i: left + (w * i / (len(done) - 1) if len(done) > 1 else w / 2)
    y = lambda score, k: top + h * (1 - score / 4) + (k - 3) * 1.5  # a small offset keeps equal lines visible
    parts = [f'<line x1="{left}" x2="{left + w}" y1="{y(v, 3)}" y2="{y(v, 3)}" stroke="#e3e5ea"/>'
             f'<text x="{left - 8}" y="{y(v, 3) + 4}" font-size="11" text-anchor="end">{v}</text>' for v in range(5)]
    parts += [f'<text x="{x(i)}" y="{top + h + 18}" font-size="11" text-anchor="middle">'
              f'#{i + 1} {time.strftime("%m-%d", time.localtime(s.started))}</text>' for i, s in enumerate(done)]
    for k, p in enumerate(PHASES):
        pts = [(x(i), y(s.phase_scores[p], k)) for i, s in enumerate(done) if p in s.phase_scores]
        color = PHASE_COLORS[k]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                     + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{color}"/>' for a, b in pts]
        lx, ly = left + (k % 3) * (w // 3), top + h + 44 + (k // 3) * 20  # legend: 3 columns
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{lx + 15}" y="{ly}" font-size="12">{esc(PHASE_TITLES[p])}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Score per phase over your interviews" '
            f'width="{width}" height="{height}" font-family="sans-serif">{"".join(parts)}</svg>')
