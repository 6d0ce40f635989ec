"""The feedback report: rubric scores per phase, quotes, grounded advice, study plan.

Scores come only from the rubric over the interview state (which signals were
covered, hints taken, pitfalls hit) - never from LLM prose. The report renders
as contract JSON, Markdown, and a self-contained HTML page with a bar chart.
"""

from __future__ import annotations

import html
import re
import time
from typing import Literal, Optional

from pydantic import BaseModel, Field

from .cases import Case
from .contract import PHASE_TITLES, PHASES, SIGNALS, Verdict, phase_signals
from .policy import best_sentence  # the same one-sentence extraction the critiques use
from .prompts import mid_sentence
from .retrieval import Retriever
from .state import InterviewState

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

VERDICT_TEXT = {"strong_hire": "Strong hire", "hire": "Hire", "lean_hire": "Lean hire",
                "lean_no_hire": "Lean no hire", "no_hire": "No hire"}


def to_markdown(r: Report) -> str:
    lines = [f"# Interview report: {r.case_title or r.case}", "",
             f"**Overall: {r.overall.score}/100 - {VERDICT_TEXT[r.overall.verdict]}** (level: {r.level})", "",
             "| Phase | Score | Covered | Missed |", "|---|---|---|---|"]
    for p, pr in r.phases.items():
        lines.append(f"| {PHASE_TITLES[p]} | {pr.score}/4 | {', '.join(pr.covered) or '-'} | {', '.join(pr.missed) or '-'} |")
    for p, pr in r.phases.items():
        lines += ["", f"## {PHASE_TITLES[p]} - {pr.score}/4", "", pr.feedback]
        lines += [f"- You said ({s}): \"{_md_escape(q)}\"" for s, q in pr.quotes.items()]
        lines += [f"- Recommended ({a.signal}): {_md_escape(a.text)} _[{a.source}]_" for a in pr.advice]
    lines += ["", "## What to study next", ""] + [f"{i}. **{s.title}** (`{s.source}`): {s.why}"
                                                  for i, s in enumerate(r.study, 1)]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    """Candidate text in Markdown: no raw HTML, no markup injection."""
    return re.sub(r"([|*_`~\[\]])", r"\\\1", html.escape(text, quote=False))


PHASE_SHORT = {"clarify": "Clarify", "framing": "Framing", "data": "Data", "model": "Model",
               "evaluation": "Evaluation", "serving": "Serving", "monitoring": "Monitoring"}


def bar_chart_svg(r: Report, width: int = 520) -> str:
    """Per-phase scores as horizontal bars: inline SVG, no scripts, no outside files."""
    rows, h, left, bar = [], 26, 100, width - 150  # room on the right for the "4/4" label
    for i, (p, pr) in enumerate(r.phases.items()):
        y, w = 10 + i * h, int(bar * pr.score / 4)
        rows.append(f'<text x="0" y="{y + 14}" font-size="13">{PHASE_SHORT[p]}</text>'
                    f'<rect x="{left}" y="{y}" width="{bar}" height="18" fill="#eee"/>'
                    f'<rect x="{left}" y="{y}" width="{w}" height="18" fill="#3b6fd8"/>'
                    f'<text x="{left + w + 6}" y="{y + 14}" font-size="12">{pr.score}/4</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Scores per phase" '
            f'width="{width}" height="{20 + h * len(r.phases)}" font-family="sans-serif">{"".join(rows)}</svg>')


def to_html(r: Report) -> str:
    """A self-contained page: inline CSS and SVG; every candidate string escaped."""
    e = html.escape
    parts = [f"<h1>Interview report: {e(r.case_title or r.case)}</h1>",
             f"<p class='overall'><b>Overall: {r.overall.score}/100 - {VERDICT_TEXT[r.overall.verdict]}</b> "
             f"(level: {e(r.level)})</p>", bar_chart_svg(r)]
    for p, pr in r.phases.items():
        parts.append(f"<h2>{e(PHASE_TITLES[p])} - {pr.score}/4</h2><p>{e(pr.feedback)}</p><ul>")
        parts += [f"<li>You said ({e(s)}): &ldquo;{e(q)}&rdquo;</li>" for s, q in pr.quotes.items()]
        parts += [f"<li>Recommended ({e(a.signal)}): {e(a.text)} <small>[{e(a.source)}]</small></li>" for a in pr.advice]
        parts.append("</ul>")
    parts.append("<h2>What to study next</h2><ol>" + "".join(
        f"<li><b>{e(s.title)}</b> (<code>{e(s.source)}</code>): {e(s.why)}</li>" for s in r.study) + "</ol>")
    style = "body{font-family:sans-serif;max-width:760px;margin:2em auto;line-height:1.45}h2{margin-top:1.4em}"
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mlsd-bot report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
