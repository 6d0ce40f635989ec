"""The feedback report: depth per signal, phase grades, mistakes, how the interview was run.

Grades come only from the interview state - the depth (0-3) each signal reached,
with the candidate's sentence that earned it; the mistakes they made and
whether they fixed them; hints taken; how they ran the interview - through the
rubric numbers in data/grading.yaml. Never from LLM prose. The report renders
as contract JSON, Markdown, and a self-contained HTML page with a bar chart.
"""

from __future__ import annotations

import functools
import html
import re
import time
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, Field

from .cases import Case
from .contract import PHASE_TITLES, PHASES, SIGNALS, Verdict, phase_signals
from .prompts import mid_sentence
from .retrieval import Retriever, best_sentence
from .state import InterviewState, Turn

GRADING = Path(__file__).parent / "data" / "grading.yaml"
DEPTH_WORDS = {0: "not shown", 1: "mentioned", 2: "specific", 3: "justified"}


@functools.lru_cache(maxsize=4)
def rubric(path: Path = GRADING) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class Advice(BaseModel):
    signal: str
    text: str
    source: str


class SignalGrade(BaseModel):
    signal: str
    label: str
    depth: int = Field(ge=0, le=3)
    quote: str = ""  # the candidate's own sentence that earned the depth
    why: str = ""


class MistakeReport(BaseModel):
    pitfall: str
    name: str
    quote: str
    fixed: bool
    fix_quote: str = ""


class PhaseReport(BaseModel):
    score: int = Field(ge=0, le=4)
    covered: list[str]
    missed: list[str]
    feedback: str
    quotes: dict[str, str] = Field(default_factory=dict)
    advice: list[Advice] = Field(default_factory=list)
    hints: int = Field(0, ge=0)
    grades: list[SignalGrade] = Field(default_factory=list)
    mistakes: list[MistakeReport] = Field(default_factory=list)
    deductions: list[str] = Field(default_factory=list)
    skipped: bool = False


class Overall(BaseModel):
    score: int = Field(ge=0, le=100)
    verdict: Verdict


class SignalSummary(BaseModel):
    covered: list[str]
    missed: list[str]
    depth: dict[str, int] = Field(default_factory=dict)


class ProcessItem(BaseModel):
    name: str
    score: float = Field(ge=0, le=1)
    evidence: str


class Process(BaseModel):
    score: int = Field(ge=0, le=4)
    items: list[ProcessItem]


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
    limits: list[str] = Field(default_factory=list)  # why the overall score was held down, in the candidate's terms
    phases: dict[str, PhaseReport]
    signals: SignalSummary
    process: Optional[Process] = None
    study: list[Study] = Field(default_factory=list)


def depths(state: InterviewState) -> dict[str, int]:
    """Every signal's depth 0-3; a mistake never fixed holds its signal at 1 at most."""
    out = {s: state.covered[s].depth if s in state.covered else 0 for s in SIGNALS}
    for m in state.charged():
        if not m.fixed:
            out[m.signal] = min(out[m.signal], 1)
    return out


def phase_points(state: InterviewState, case: Case, phase: str, depth: dict[str, int]) -> tuple[float, list[str]]:
    """The rubric: 0..4 for one phase, and the deductions in words."""
    r = rubric()
    credit = r["credit"][state.level]
    sigs = phase_signals(phase)
    weight = {s: r["optional_weight"] if s in case.optional_signals else 1.0 for s in sigs}
    got = {s: credit[depth[s]] for s in sigs}
    if phase == "clarify":  # asking the interviewer the right questions is good clarifying
        got = {s: max(v, r["asked_credit"] if s in state.clarified else 0.0) for s, v in got.items()}
    points = 4 * sum(weight[s] * got[s] for s in sigs) / sum(weight.values())
    hints = len(state.hints.get(phase, []))
    mistakes = [m for m in state.charged() if m.phase == phase]
    unfixed = sum(not m.fixed for m in mistakes)
    deductions = ([f"{hints} hint(s): -{r['hint_cost'] * hints:.1f}"] if hints else []) + \
        ([f"{unfixed} mistake(s) not fixed: -{r['mistake_cost'] * unfixed:.1f}"] if unfixed else []) + \
        ([f"{len(mistakes) - unfixed} mistake(s) fixed after pushback: -{r['fixed_cost'] * (len(mistakes) - unfixed):.1f}"]
         if len(mistakes) > unfixed else [])
    penalty = r["hint_cost"] * hints + r["mistake_cost"] * unfixed + r["fixed_cost"] * (len(mistakes) - unfixed)
    return max(0.0, min(4.0, points - penalty)), deductions


def process(state: InterviewState, depth: dict[str, int]) -> Process:
    """How the candidate ran the interview: clarified first, drove it, kept to time, skipped nothing."""
    r = rubric()
    clarify_topics = {s for s in phase_signals("clarify") if depth[s] or s in state.clarified}
    clarified = min(1.0, (len(clarify_topics) + 0.5 * state.clarify_questions) / r["clarify_target"])
    covered = [e for e in state.covered.values() if e.depth >= 1]
    volunteered = [e for e in covered if not e.prompted]
    drove = len(volunteered) / len(covered) * min(1.0, len(covered) / 12) if covered else 0.0
    in_time = 1 - len(set(state.timed_out)) / len(PHASES)
    bare = [p for p in state.skipped if sum(depth[s] >= 2 for s in phase_signals(p)) < 1]
    skipped = max(0.0, 1 - len(bare) / 3)
    items = [
        ProcessItem(name="Clarified before designing", score=round(clarified, 2),
                    evidence=f"{state.clarify_questions} question(s) asked in clarify; topics pinned down: "
                             f"{len(clarify_topics)} of {len(phase_signals('clarify'))}"),
        ProcessItem(name="Drove the discussion", score=round(drove, 2),
                    evidence=f"{len(volunteered)} of {len(covered)} topics raised before being asked"),
        ProcessItem(name="Kept to the time", score=round(in_time, 2),
                    evidence=f"{len(set(state.timed_out))} phase(s) ran out of time"),
        ProcessItem(name="Covered every phase", score=round(skipped, 2),
                    evidence=("skipped with /next before saying anything specific: "
                              + ", ".join(PHASE_TITLES[p] for p in bare)) if bare else "no phase skipped bare"),
    ]
    return Process(score=round(4 * sum(i.score for i in items) / len(items)), items=items)


def verdict(score: int) -> Verdict:
    return next(v for floor, v in rubric()["verdicts"] if score >= floor)


def overall(state: InterviewState, case: Case, points: dict[str, float], proc: Process) -> tuple[int, list[str]]:
    """The 0-100 score, and the caps that held it down (each in words the candidate can act on)."""
    r = rubric()
    w = r["phase_weight"]
    design = sum(w[p] * points[p] / 4 for p in PHASES) / sum(w.values())
    raw = 100 * ((1 - r["process_weight"]) * design + r["process_weight"] * proc.score / 4)
    # The rubric's raw mean compresses: nobody gets every signal to depth 3, nobody gets all zeros.
    # A stretch around a centre maps it onto the scale interviewers use; below the centre it is
    # gentler, since interviewers keep a few points for a candidate who engaged but knew little.
    st = r["stretch"]
    score = round(st["centre"] + (st["gain"] if raw >= st["centre"] else st["low_gain"]) * (raw - st["centre"]))
    caps = []
    unfixed = sum(not m.fixed for m in state.charged())
    if unfixed:
        caps.append((r["mistake_caps"][min(unfixed, len(r["mistake_caps"])) - 1],
                     f"{unfixed} mistake(s) never fixed"))
    # Depth 2 without ever a reason is a checklist read out in sentences: above mid level an
    # interviewer expects the key choices argued, and names alone are not a hire.
    unjustified = r["unjustified"]
    justified = sum(e.depth >= 3 for e in state.covered.values())
    if state.level in unjustified["levels"] and justified <= unjustified["max_justified"]:
        caps.append((unjustified["cap"], f"{justified} choice(s) justified with a reason or trade-off in the whole "
                                         f"interview; at {state.level} level the key choices are expected argued"))
    limits = [f"Held at {cap}: {why}." for cap, why in caps if cap < score]
    score = min([score] + [cap for cap, _ in caps])
    return max(0, min(100, score)), limits


def _advice(retriever: Retriever, case: Case, phase: str, weak: list[str], descriptions: dict[str, str]) -> list[Advice]:
    """One fact from the case note per missed or shallow signal (two at most), never the same fact twice."""
    out: list[Advice] = []
    for sid in weak[:2]:
        for hit in retriever.search(descriptions[sid], case=case.id, phase=phase, k=3):
            if hit.chunk.heading.lower().endswith("pushback"):
                continue  # counterpoints to mistakes the candidate may not have made
            text = best_sentence(hit, descriptions[sid])
            if all(a.text != text for a in out):
                out.append(Advice(signal=sid, text=text, source=hit.chunk.citation))
                break
    return out


def _feedback(grades: list[SignalGrade], mistakes: list[MistakeReport], skipped: bool) -> str:
    if skipped and not any(g.depth >= 2 for g in grades):
        return "Skipped before anything specific was said."
    strong = [mid_sentence(g.label) for g in grades if g.depth == 3]
    specific = [mid_sentence(g.label) for g in grades if g.depth == 2]
    shallow = [mid_sentence(g.label) for g in grades if g.depth == 1]
    absent = [mid_sentence(g.label) for g in grades if g.depth == 0]
    parts = []
    if strong:
        parts.append(f"Justified choices on {', '.join(strong)}.")
    if specific:
        parts.append(f"Specific on {', '.join(specific)}, without saying why over the alternatives.")
    if shallow:
        parts.append(f"Only mentioned {', '.join(shallow)}: name the choice and the number.")
    if absent:
        parts.append(f"Not shown: {', '.join(absent)}.")
    for m in mistakes:
        parts.append(f"Mistake: {m.name}" + (" (fixed after pushback)." if m.fixed else ", never fixed."))
    return " ".join(parts)


def build_report(state: InterviewState, case: Case, retriever: Retriever, labels: dict[str, str],
                 descriptions: dict[str, str], now: float | None = None,
                 pitfall_names: dict[str, str] | None = None) -> Report:
    names = pitfall_names or {}
    depth = depths(state)
    phases, points = {}, {}
    for phase in PHASES:
        sigs = phase_signals(phase)
        points[phase], deductions = phase_points(state, case, phase, depth)
        grades = [SignalGrade(signal=s, label=labels[s], depth=depth[s],
                              quote=state.covered[s].quote if s in state.covered else "",
                              why=state.covered[s].why if s in state.covered else "") for s in sigs]
        mistakes = [MistakeReport(pitfall=m.pitfall, name=names.get(m.pitfall, m.pitfall.replace("_", " ")),
                                  quote=m.quote, fixed=m.fixed, fix_quote=m.fix_quote)
                    for m in state.charged() if m.phase == phase]
        weak = [s for s in sigs if depth[s] <= 1 and s not in case.optional_signals] + \
               [s for s in sigs if depth[s] <= 1 and s in case.optional_signals]
        skipped = phase in state.skipped
        phases[phase] = PhaseReport(
            score=round(points[phase]), covered=[s for s in sigs if depth[s] >= 1],
            missed=[s for s in sigs if depth[s] == 0], feedback=_feedback(grades, mistakes, skipped),
            quotes={s: state.covered[s].quote for s in sigs if depth[s] >= 1 and s in state.covered},
            hints=len(state.hints.get(phase, [])), grades=grades, mistakes=mistakes, deductions=deductions,
            skipped=skipped, advice=_advice(retriever, case, phase, weak, descriptions))
    proc = process(state, depth)
    score, limits = overall(state, case, points, proc)
    return Report(case=case.id, case_title=case.title, level=state.level, session_id=state.session_id,
                  created=now if now is not None else time.time(), overall=Overall(score=score, verdict=verdict(score)),
                  limits=limits,
                  phases=phases, process=proc, study=_study(phases, case, labels),
                  signals=SignalSummary(covered=[s for s in SIGNALS if depth[s] >= 1],
                                        missed=[s for s in SIGNALS if depth[s] == 0], depth=depth))


def _study(phases: dict[str, PhaseReport], case: Case, labels: dict[str, str]) -> list[Study]:
    """2-3 concrete things to read next: the weakest phases' notes."""
    weakest = sorted(PHASES, key=lambda p: (phases[p].score, -len(phases[p].missed), PHASES.index(p)))[:3]
    out = []
    for p in weakest:
        thin = [g.signal for g in phases[p].grades if g.depth <= 1]
        if not thin:
            continue
        topics = ", ".join(mid_sentence(labels[s]) for s in thin[:3])
        out.append(Study(title=f"{PHASE_TITLES[p]}: the framework note", source=f"knowledge/framework/{p}.md",
                         why=f"covers {topics} and the questions interviewers ask there"))
    if out:
        p = weakest[0]
        out.append(Study(title=f"{case.title}: the {PHASE_TITLES[p].lower()} section",
                         source=f"knowledge/case_studies/{case.id}.md#{p}",
                         why="worked numbers and trade-offs for this exact problem"))
    return out[:3]


# --- rendering -------------------------------------------------------------------
# Everything below turns a Report (and, for the transcript, the interview's turns) into
# Markdown or HTML for people: ids become labels and titles, charts are SVG that scale to
# their container and draw text in the page's text colour (light or dark).

VERDICT_TEXT = {"strong_hire": "Strong hire", "hire": "Hire", "lean_hire": "Lean hire",
                "lean_no_hire": "Lean no hire", "no_hire": "No hire"}


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


def _turn_meta(t: Turn) -> str:
    """'03:12 · Data preparation · follow up': when, in which phase, and (interviewer turns) what kind."""
    return " · ".join(x for x in (_clock(t.at), PHASE_TITLES.get(t.phase, t.phase), _action_text(t.action)) if x)


def to_markdown(r: Report, turns: list[Turn] | None = None) -> str:
    """The report as Markdown; with `turns`, the whole conversation follows it."""
    lines = [f"# Interview report: {r.case_title or r.case}", "",
             f"**Overall: {r.overall.score}/100 - {VERDICT_TEXT[r.overall.verdict]}** (level: {r.level})", "",
             *[f"- {_md_escape(x)}" for x in r.limits], *([""] if r.limits else []),
             "| Phase | Score | Justified or specific | Only mentioned or missing |", "|---|---|---|---|"]
    for p, pr in r.phases.items():
        good = ", ".join(g.label for g in pr.grades if g.depth >= 2) or "-"
        thin = ", ".join(g.label for g in pr.grades if g.depth <= 1) or "-"
        lines.append(f"| {PHASE_TITLES[p]} | {pr.score}/4 | {good} | {thin} |")
    for p, pr in r.phases.items():
        lines += ["", f"## {PHASE_TITLES[p]} - {pr.score}/4", "", pr.feedback, ""]
        lines += [f"- {g.label}: {DEPTH_WORDS[g.depth]}" + (f" - you said \"{_md_escape(g.quote)}\"" if g.quote else "")
                  for g in pr.grades]
        lines += [f"- Mistake - {_md_escape(m.name)}: \"{_md_escape(m.quote)}\"" + (" (fixed)" if m.fixed else "")
                  for m in pr.mistakes]
        lines += [f"- Deduction: {d}" for d in pr.deductions]
        lines += [f"- Recommended: {_md_escape(a.text)} _({source_label(a.source, r)})_" for a in pr.advice]
    if r.process:
        lines += ["", f"## How you ran the interview - {r.process.score}/4", ""]
        lines += [f"- {i.name}: {round(100 * i.score)}% - {_md_escape(i.evidence)}" for i in r.process.items]
    lines += ["", "## What to study next", ""] + [f"{i}. **{s.title}** (`{s.source}`): {s.why}"
                                                  for i, s in enumerate(r.study, 1)]
    text = "\n".join(lines) + "\n"
    return text + "\n" + transcript_markdown(turns) if turns else text


def transcript_markdown(turns: list[Turn]) -> str:
    """The conversation, one paragraph per turn: who, when, phase and action, then the words."""
    out = ["## Transcript", ""]
    for t in turns:
        who = "**You**" if t.role == "candidate" else "**Interviewer**"
        out += [f"{who} _({_turn_meta(t)})_", "", _md_escape(t.text).replace("\n", "  \n"), ""]
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
    items = [f'<li class="turn {t.role}"><div class="who"><b>{"You" if t.role == "candidate" else "Interviewer"}</b> '
             f'<small>{e(_turn_meta(t))}</small></div><div class="said">{e(t.text)}</div></li>' for t in turns]
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
             f"(level: {e(r.level)})</p>",
             *([f"<ul>{''.join(f'<li>{e(x)}</li>' for x in r.limits)}</ul>"] if r.limits else []),
             bar_chart_svg(r)]
    for p, pr in r.phases.items():
        parts.append(f"<h2>{e(PHASE_TITLES[p])} - {pr.score}/4</h2><p>{e(pr.feedback)}</p><ul>")
        parts += [f"<li>{e(g.label)}: {DEPTH_WORDS[g.depth]}" + (f" - you said &ldquo;{e(g.quote)}&rdquo;" if g.quote else "")
                  + "</li>" for g in pr.grades]
        parts += [f"<li>Mistake - {e(m.name)}: &ldquo;{e(m.quote)}&rdquo;{' (fixed)' if m.fixed else ''}</li>"
                  for m in pr.mistakes]
        parts += [f"<li>Deduction: {e(d)}</li>" for d in pr.deductions]
        parts += [f"<li>Recommended: {e(a.text)} <small>({e(source_label(a.source, r))})</small></li>"
                  for a in pr.advice]
        parts.append("</ul>")
    if r.process:
        parts.append(f"<h2>How you ran the interview - {r.process.score}/4</h2><ul>" + "".join(
            f"<li>{e(i.name)}: {round(100 * i.score)}% - {e(i.evidence)}</li>" for i in r.process.items) + "</ul>")
    parts.append("<h2>What to study next</h2><ol>" + "".join(
        f"<li><b>{e(s.title)}</b> (<code>{e(s.source)}</code>): {e(s.why)}</li>" for s in r.study) + "</ol>")
    if turns:
        parts.append(transcript_html(turns))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>mlsd-bot report</title>"
            f"<style>{_PAGE_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
