"""The feedback report: rubric scores per phase, quotes, grounded advice, study plan.

Scores come only from the rubric over the interview state (which signals were
covered, hints taken, pitfalls hit) - never from LLM prose. The report renders
as contract JSON, Markdown, and a self-contained HTML page with a bar chart.
"""

from __future__ import annotations

import html
import re
import time
from functools import lru_cache
from typing import Literal, Optional

from pydantic import BaseModel, Field

from .cases import Case
from .contract import PHASE_TITLES, PHASES, SIGNALS, Verdict, phase_signals
from .policy import best_sentence  # the same one-sentence extraction the critiques use
from .prompts import mid_sentence
from .retrieval import Retriever
from .state import InterviewState, Turn

# Rubric knobs. Optional signals weigh half; each hint and each pitfall the
# interviewer had to critique costs a little; higher levels are graded stricter.
OPTIONAL_WEIGHT = 0.5
HINT_COST = 0.4
PITFALL_COST = 0.4
LEVEL_FACTOR = {"mid": 1.1, "senior": 1.0, "staff": 0.9}
VERDICTS: list[tuple[int, Verdict]] = [(85, "strong_hire"), (70, "hire"), (55, "lean_hire"), (40, "lean_no_hire"),
                                       (0, "no_hire")]


class Advice(BaseModel):
    signal: str
    text: str
    source: str


class PhaseReport(BaseModel):
    score: int = Field(ge=0, le=4)
    covered: list[str]
    missed: list[str]
    feedback: str
    quotes: dict[str, str] = Field(default_factory=dict)
    advice: list[Advice] = Field(default_factory=list)
    hints: int = Field(0, ge=0)


class Overall(BaseModel):
    score: int = Field(ge=0, le=100)
    verdict: Verdict


class SignalSummary(BaseModel):
    covered: list[str]
    missed: list[str]


class Study(BaseModel):
    title: str
    source: str
    why: str


class Report(BaseModel):
    type: Literal["report"] = "report"
    case: str
    case_title: str = ""
    level: str = "senior"
    session_id: Optional[str] = None
    created: float = 0.0
    overall: Overall
    phases: dict[str, PhaseReport]
    signals: SignalSummary
    study: list[Study] = Field(default_factory=list)


def phase_points(state: InterviewState, case: Case, phase: str) -> float:
    """The rubric: 0..4 for one phase, before rounding."""
    sigs = phase_signals(phase)
    weight = {s: OPTIONAL_WEIGHT if s in case.optional_signals else 1.0 for s in sigs}
    frac = sum(w for s, w in weight.items() if s in state.covered) / sum(weight.values())
    pitfalls = [k for k, p in state.critiques.items() if p == phase and not k.startswith("deepen:")]
    penalty = HINT_COST * len(state.hints.get(phase, [])) + PITFALL_COST * len(pitfalls)
    return max(0.0, min(4.0, 4 * frac * LEVEL_FACTOR[state.level] - penalty))


def verdict(score: int) -> Verdict:
    return next(v for floor, v in VERDICTS if score >= floor)


def _advice(retriever: Retriever, case: Case, phase: str, missed: list[str], descriptions: dict[str, str]) -> list[Advice]:
    out: list[Advice] = []
    for sid in missed[:2]:
        for hit in retriever.search(descriptions[sid], case=case.id, phase=phase, k=3):
            text = best_sentence(hit, descriptions[sid])
            if all(a.text != text for a in out):  # two missed signals, two different facts
                out.append(Advice(signal=sid, text=text, source=hit.chunk.citation))
                break
    return out


def _feedback(covered: list[str], missed: list[str], labels: dict[str, str]) -> str:
    name = lambda ids: ", ".join(mid_sentence(labels[s]) for s in ids)
    if not missed:
        return f"Complete: you covered {name(covered)}."
    if not covered:
        return f"Nothing of this phase came up. A strong answer covers {name(missed)}."
    return f"You covered {name(covered)}; still missing: {name(missed)}."


def build_report(state: InterviewState, case: Case, retriever: Retriever, labels: dict[str, str],
                 descriptions: dict[str, str], now: float | None = None) -> Report:
    phases, points = {}, []
    for phase in PHASES:
        covered = [s for s in phase_signals(phase) if s in state.covered]
        missed = [s for s in phase_signals(phase) if s not in state.covered]
        p = phase_points(state, case, phase)
        points.append(p)
        phases[phase] = PhaseReport(
            score=round(p), covered=covered, missed=missed, feedback=_feedback(covered, missed, labels),
            quotes={s: state.covered[s].quote for s in covered}, hints=len(state.hints.get(phase, [])),
            advice=_advice(retriever, case, phase, missed, descriptions))
    score = round(100 * sum(points) / (4 * len(PHASES)))
    return Report(case=case.id, case_title=case.title, level=state.level, session_id=state.session_id,
                  created=now if now is not None else time.time(), overall=Overall(score=score, verdict=verdict(score)),
                  phases=phases, study=_study(phases, case),
                  signals=SignalSummary(covered=[s for s in SIGNALS if s in state.covered],
                                        missed=[s for s in SIGNALS if s not in state.covered]))


def _study(phases: dict[str, PhaseReport], case: Case) -> list[Study]:
    """2-3 concrete things to read next: the weakest phases' notes."""
    weakest = sorted(PHASES, key=lambda p: (phases[p].score, -len(phases[p].missed), PHASES.index(p)))[:3]
    out = []
    for p in weakest:
        if not phases[p].missed:
            continue
        topics = ", ".join(phases[p].missed[:3])
        out.append(Study(title=f"{PHASE_TITLES[p]}: the framework note", source=f"knowledge/framework/{p}.md",
                         why=f"covers {topics} and the questions interviewers ask there"))
    if out:
        p = weakest[0]
        out.append(Study(title=f"{case.title}: the {p} section", source=f"knowledge/case_studies/{case.id}.md#{p}",
                         why="worked numbers and trade-offs for this exact problem"))
    return out[:3]


# --- rendering -------------------------------------------------------------------
# Everything below turns a Report (and, for the transcript, the interview's turns) into
# Markdown or HTML for people: signal and phase ids become their labels, charts are SVG
# that scale to their container and draw text in the page's text colour (light or dark).

VERDICT_TEXT = {"strong_hire": "Strong hire", "hire": "Hire", "lean_hire": "Lean hire",
                "lean_no_hire": "Lean no hire", "no_hire": "No hire"}


@lru_cache(maxsize=1)
def _signal_labels() -> dict[str, str]:
    from .signals import load_specs  # the labels live with the signal definitions (a small YAML read)

    return {sid: spec.label for sid, spec in load_specs()[0].items()}


def signal_label(sid: str) -> str:
    """'business_objective' -> 'Business goal' (an unknown id is shown as words)."""
    return _signal_labels().get(sid) or sid.replace("_", " ").capitalize()


def _labels(ids: list[str]) -> str:
    return ", ".join(signal_label(s) for s in ids) or "-"


def source_label(citation: str, r: Report | None = None) -> str:
    """A citation as words: 'case_studies/news_feed.md#data' -> 'News feed › Data preparation'.

    A framework note is named after its phase, the report's own case note after the case
    title, any other note after its file name; the section after its phase or heading.
    """
    path, _, section = citation.partition("#")
    stem = path.rsplit("/", 1)[-1].removesuffix(".md")
    if path.startswith("framework/") and stem in PHASE_TITLES:
        note = f"{PHASE_TITLES[stem]} (framework)"
    elif r is not None and stem == r.case and r.case_title:
        note = r.case_title
    else:
        note = stem.replace("_", " ").capitalize()
    part = PHASE_TITLES.get(section) or section.replace("-", " ").capitalize()
    return f"{note} › {part}" if part else note


def _action_text(action: str | None) -> str:
    """Any turn action as words ('follow_up' -> 'follow up'): new actions need no change here."""
    return (action or "").replace("_", " ")


def _clock(seconds: float) -> str:
    m, s = divmod(int(max(seconds, 0)), 60)
    return f"{m:02d}:{s:02d}"


def to_markdown(r: Report, turns: list[Turn] | None = None) -> str:
    """The report as Markdown; with `turns`, the whole conversation follows it."""
    lines = [f"# Interview report: {r.case_title or r.case}", "",
             f"**Overall: {r.overall.score}/100 - {VERDICT_TEXT[r.overall.verdict]}** (level: {r.level})", "",
             "| Phase | Score | Covered | Missed |", "|---|---|---|---|"]
    for p, pr in r.phases.items():
        lines.append(f"| {PHASE_TITLES[p]} | {pr.score}/4 | {_labels(pr.covered)} | {_labels(pr.missed)} |")
    for p, pr in r.phases.items():
        lines += ["", f"## {PHASE_TITLES[p]} - {pr.score}/4", "", pr.feedback]
        lines += [f"- You said ({signal_label(s)}): \"{_md_escape(q)}\"" for s, q in pr.quotes.items()]
        lines += [f"- Recommended ({signal_label(a.signal)}): {_md_escape(a.text)} "
                  f"_({source_label(a.source, r)})_" for a in pr.advice]
    lines += ["", "## What to study next", ""] + [f"{i}. **{s.title}** (`{s.source}`): {s.why}"
                                                  for i, s in enumerate(r.study, 1)]
    text = "\n".join(lines) + "\n"
    return text + "\n" + transcript_markdown(turns) if turns else text


def transcript_markdown(turns: list[Turn]) -> str:
    """The conversation, one paragraph per turn: who, when, phase and action, then the words."""
    out = ["## Transcript", ""]
    for t in turns:
        who = "**You**" if t.role == "candidate" else "**Interviewer**"
        meta = " · ".join(x for x in (_clock(t.at), PHASE_TITLES.get(t.phase, t.phase), _action_text(t.action)) if x)
        out += [f"{who} _({meta})_", "", _md_escape(t.text).replace("\n", "  \n"), ""]
    return "\n".join(out)


def _md_escape(text: str) -> str:
    """Candidate text in Markdown: no raw HTML, no markup injection."""
    return re.sub(r"([|*_`~\[\]])", r"\\\1", html.escape(text, quote=False))


PHASE_SHORT = {"clarify": "Clarify", "framing": "Framing", "data": "Data", "model": "Model",
               "evaluation": "Evaluation", "serving": "Serving", "monitoring": "Monitoring"}
CHART_WIDTH = 340  # the viewBox width: about a phone column, so text keeps its size there; capped on desktop


def bar_chart_svg(r: Report) -> str:
    """Per-phase scores as horizontal bars: inline SVG, no scripts, no outside files.

    It scales to its container (viewBox, width 100%); text and the empty track use
    currentColor, so the chart follows the page's text colour in light and dark mode.
    The "n/4" labels sit right of the track, on the page background.
    """
    rows, h, left, track = [], 26, 88, CHART_WIDTH - 88 - 38
    for i, (p, pr) in enumerate(r.phases.items()):
        y, w = 6 + i * h, round(track * pr.score / 4)
        rows.append(f'<text x="0" y="{y + 14}" font-size="14" fill="currentColor">{PHASE_SHORT[p]}</text>'
                    f'<rect x="{left}" y="{y}" width="{track}" height="18" fill="currentColor" fill-opacity=".14"/>'
                    f'<rect x="{left}" y="{y}" width="{w}" height="18" fill="#3b6fd8"/>'
                    f'<text x="{left + track + 6}" y="{y + 14}" font-size="14" fill="currentColor">{pr.score}/4</text>')
    height = 12 + h * len(r.phases)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Scores per phase" '
            f'viewBox="0 0 {CHART_WIDTH} {height}" width="100%" style="max-width:{CHART_WIDTH * 1.2:.0f}px;'
            f'height:auto;display:block" font-family="sans-serif">{"".join(rows)}</svg>')


def transcript_html(turns: list[Turn]) -> str:
    """The conversation as an HTML fragment (used on screen and in the HTML download); all text escaped."""
    e = html.escape
    items = []
    for t in turns:
        who = "You" if t.role == "candidate" else "Interviewer"
        meta = " · ".join(x for x in (_clock(t.at), PHASE_TITLES.get(t.phase, t.phase), _action_text(t.action)) if x)
        items.append(f'<li class="turn {t.role}"><div class="who"><b>{who}</b> <small>{e(meta)}</small></div>'
                     f'<div class="said">{e(t.text)}</div></li>')
    return f'<section class="mlsd-transcript"><h2>Transcript</h2><ol>{"".join(items)}</ol></section>'


# Readable on a phone (viewport, fluid width, wrapping) and in dark mode (colour-scheme aware).
_PAGE_STYLE = (
    ":root{color-scheme:light dark}"
    "body{font-family:sans-serif;max-width:760px;margin:1.5em auto;padding:0 1em;line-height:1.5;"
    "overflow-wrap:anywhere}h2{margin-top:1.4em}svg{max-width:100%}"
    ".mlsd-transcript ol{list-style:none;padding:0}.mlsd-transcript li{margin:0 0 .8em;padding:.5em .8em;"
    "border-left:3px solid #8a94a6}.mlsd-transcript li.candidate{border-color:#3b6fd8}"
    ".mlsd-transcript .said{white-space:pre-wrap}.mlsd-transcript small{opacity:.8}"
    "@media (prefers-color-scheme:dark){body{background:#15171c;color:#e8eaee}}")


def to_html(r: Report, turns: list[Turn] | None = None) -> str:
    """A self-contained page: inline CSS and SVG; every candidate string escaped. With `turns`, the transcript."""
    e = html.escape
    parts = [f"<h1>Interview report: {e(r.case_title or r.case)}</h1>",
             f"<p class='overall'><b>Overall: {r.overall.score}/100 - {VERDICT_TEXT[r.overall.verdict]}</b> "
             f"(level: {e(r.level)})</p>", bar_chart_svg(r)]
    for p, pr in r.phases.items():
        parts.append(f"<h2>{e(PHASE_TITLES[p])} - {pr.score}/4</h2><p>{e(pr.feedback)}</p><ul>")
        parts += [f"<li>You said ({e(signal_label(s))}): &ldquo;{e(q)}&rdquo;</li>" for s, q in pr.quotes.items()]
        parts += [f"<li>Recommended ({e(signal_label(a.signal))}): {e(a.text)} "
                  f"<small>({e(source_label(a.source, r))})</small></li>" for a in pr.advice]
        parts.append("</ul>")
    parts.append("<h2>What to study next</h2><ol>" + "".join(
        f"<li><b>{e(s.title)}</b> (<code>{e(s.source)}</code>): {e(s.why)}</li>" for s in r.study) + "</ol>")
    if turns:
        parts.append(transcript_html(turns))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>mlsd-bot report</title>"
            f"<style>{_PAGE_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
