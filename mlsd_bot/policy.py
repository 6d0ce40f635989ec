"""The interviewer's policy: after each candidate message, decide the next move.

This is the state machine. Phases only move forward in contract order; each
decision names its action (ask | follow_up | critique | hint | advance | close),
its topic and the knowledge chunks it cites. The voice (offline templates or an
LLM) only phrases a decision; it never changes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from .cases import Case
from .contract import PHASE_TITLES, SIGNAL_PHASE, Action, next_phase, phase_signals
from .prompts import Prompts, mid_sentence
from .retrieval import Hit, Retriever, terms
from .signals import Detection, SignalDetector, strip_injection
from .state import Evidence, InterviewState

PITFALLS = Path(__file__).parent / "data" / "pitfalls.yaml"
CHOICE_SIGNALS = frozenset({"features", "sampling", "architecture", "multi_stage", "loss", "offline_metrics",
                            "serving", "optimization", "retraining"})
_NEXT = re.compile(r"^\s*(/next|next( phase)?|let'?s (move on|go on|continue|proceed)|can we move on|move on)\b", re.I)
_HINT = re.compile(r"^\s*/hint\b", re.I)
_END = re.compile(r"^\s*/end\b", re.I)
QUOTE_CHARS = 140


@dataclass(frozen=True)
class Pitfall:
    id: str
    about: str  # the phase whose knowledge grounds the critique
    pattern: re.Pattern
    unless: re.Pattern | None
    choice: str
    query: str
    question: str
    cases: frozenset[str] | None
    phases: frozenset[str] | None

    def applies(self, text: str, case: str, phase: str) -> bool:
        return ((self.cases is None or case in self.cases) and (self.phases is None or phase in self.phases)
                and bool(self.pattern.search(text)) and not (self.unless and self.unless.search(text)))


def load_pitfalls(path: Path = PITFALLS) -> list[Pitfall]:
    out = []
    for r in yaml.safe_load(path.read_text(encoding="utf-8")):
        out.append(Pitfall(r["id"], r["about"], re.compile(r["pattern"], re.I),
                           re.compile(r["unless"], re.I) if r.get("unless") else None, r["choice"], r["query"],
                           r["question"], frozenset(r["cases"]) if r.get("cases") else None,
                           frozenset(r["phases"]) if r.get("phases") else None))
    return out


@dataclass
class Decision:
    action: Action
    phase: str  # the phase this turn belongs to (after an advance: the new one)
    draft: str  # the offline interviewer's words; an LLM voice may rephrase them
    topic: str | None = None
    covered: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    next_phase: str | None = None
    notice: str | None = None  # set by a voice that had to fall back (e.g. the LLM failed)


@dataclass
class Policy:
    """Everything a decision depends on, passed in (no globals)."""
    case: Case
    retriever: Retriever
    detector: SignalDetector  # or a RefinedDetector: the same detect() and specs
    prompts: Prompts
    pitfalls: list[Pitfall]
    clock: Callable[[], float]

    # --- public --------------------------------------------------------------

    def opening(self, state: InterviewState) -> Decision:
        return Decision("ask", state.phase, self.prompts.say("open", self._seed(state), problem=self.case.problem))

    def decide(self, state: InterviewState, text: str) -> Decision:
        """The next move after candidate message `text` (already appended to state.turns)."""
        if _END.match(text):
            return self.close(state)
        if _NEXT.match(text):
            return self.advance(state, "", reason="asked")
        if _HINT.match(text):
            return self.hint(state)
        det = self.detector.detect(text, state.phase)
        self._record(state, det)
        critique = self._critique(state, strip_injection(text), det)
        if critique:
            return critique
        ack = self._ack(state, det)
        if self._phase_done(state) or self._time_up(state):
            return self.advance(state, ack, reason="time" if self._time_up(state) else "covered", covered=det.signals)
        return self._follow_up(state, ack, det) or self.advance(state, ack, reason="covered", covered=det.signals)

    def close(self, state: InterviewState, covered: list[str] | None = None) -> Decision:
        """The last turn; the interview adds the score summary to its words."""
        state.finished = True
        return Decision("close", state.phase, self.prompts.say("close", self._seed(state), summary=""),
                        covered=covered or [])

    # --- moves ---------------------------------------------------------------

    def advance(self, state: InterviewState, ack: str, reason: str, covered: list[str] | None = None) -> Decision:
        nxt = next_phase(state.phase)
        if nxt is None:
            return self.close(state, covered)
        seed = self._seed(state)
        slot = "transition_time" if reason == "time" else "transition"
        words = [ack, self.prompts.say(slot, seed, phase_title=mid_sentence(PHASE_TITLES[nxt])),
                 self.prompts.say(f"phase_open.{nxt}", seed)]
        state.phase, state.phase_started_at = nxt, self.clock()
        state.asked.append(f"open:{nxt}")
        return Decision("advance", nxt, " ".join(w for w in words if w), covered=covered or [], next_phase=nxt)

    def hint(self, state: InterviewState) -> Decision:
        given = state.hints.setdefault(state.phase, [])
        topic = next((s for s in self._missing(state) if s not in given), None)
        if topic is None:
            return Decision("hint", state.phase, self.prompts.say("hint_none", self._seed(state)))
        given.append(topic)
        hint = self.prompts.question(topic, "hint", self._seed(state))
        return Decision("hint", state.phase, self.prompts.say("hint", self._seed(state), hint=hint), topic=topic)

    def _follow_up(self, state: InterviewState, ack: str, det: Detection) -> Decision | None:
        topic = next((s for s in self._missing(state) if f"q:{s}" not in state.asked), None)
        if topic is None:
            return None
        state.asked.append(f"q:{topic}")
        kind = "deep" if state.level == "staff" else "ask"
        question = self.prompts.question(topic, kind, self._seed(state))
        text = self.prompts.say("follow_up", self._seed(state), ack=ack, question=question)
        return Decision("follow_up", state.phase, text, topic=topic, covered=det.signals)

    def _critique(self, state: InterviewState, text: str, det: Detection) -> Decision | None:
        for p in self.pitfalls:
            if p.id not in state.critiques and p.applies(text, self.case.id, state.phase):
                state.critiques[p.id] = p.about  # the red flag counts against the phase it belongs to
                return self._grounded(state, det, p.choice, p.query, p.question, p.about)
        fresh = [s for s in det.signals if s in CHOICE_SIGNALS and SIGNAL_PHASE[s] == state.phase]
        if fresh and f"deepen:{state.phase}" not in state.critiques:
            # Never the same question twice: once every generic critique question was asked, stop deepening.
            used = [k[len("cq:"):] for k in state.asked if k.startswith("cq:")]
            question = self.prompts.say_unused("critique_question", self._seed(state), used)
            if question is None:
                return None
            state.critiques[f"deepen:{state.phase}"] = state.phase
            state.asked.append(f"cq:{question}")
            return self._grounded(state, det, f"your {mid_sentence(self.detector.specs[fresh[0]].label)}", text, question)
        return None

    def _grounded(self, state: InterviewState, det: Detection, choice: str, query: str, question: str,
                  about: str | None = None) -> Decision | None:
        phase = about or state.phase
        hits = self.retriever.search(query, case=self.case.id, phase=phase, k=2)
        hits = hits or self.retriever.search(query, phase=phase, k=2)
        if not hits:
            return None
        fact = best_sentence(hits[0], query)
        text = self.prompts.say("critique", self._seed(state), ack=self._ack(state, det), choice=choice,
                                fact=fact, question=question)
        cites = list(dict.fromkeys(h.chunk.citation for h in hits))
        return Decision("critique", state.phase, text, covered=det.signals, citations=cites, facts=[fact])

    # --- bookkeeping ---------------------------------------------------------

    def _record(self, state: InterviewState, det: Detection) -> None:
        n = len(state.turns)
        for sid in det.signals:
            if sid not in state.covered:
                state.covered[sid] = Evidence(signal=sid, said_in=state.phase, quote=_short(det.quotes[sid]), turn=n)

    def _missing(self, state: InterviewState) -> list[str]:
        """Uncovered signals of the current phase, core ones first (mid level skips optional ones)."""
        sigs = [s for s in phase_signals(state.phase) if s not in state.covered]
        core = [s for s in sigs if s not in self.case.optional_signals]
        optional = [s for s in sigs if s in self.case.optional_signals]
        return core if state.level == "mid" else core + optional

    def _phase_done(self, state: InterviewState) -> bool:
        return all(s in state.covered for s in phase_signals(state.phase) if s not in self.case.optional_signals)

    def _time_up(self, state: InterviewState) -> bool:
        return self.clock() - state.phase_started_at >= state.phase_budget(state.phase)

    def _ack(self, state: InterviewState, det: Detection) -> str:
        seed = self._seed(state)
        if det.signals:
            labels = " and ".join(mid_sentence(self.detector.specs[s].label) for s in det.signals[:2])
            return self.prompts.say("ack_covered", seed, labels=labels)
        return self.prompts.say("ack", seed)

    def _seed(self, state: InterviewState) -> str:
        return f"{state.session_id}:{len(state.turns)}"


def _short(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


_TRADE_OFF = re.compile(r"\b(but|however|instead|pitfall|mistake|risk|fails?|costs?|trade-?off|avoid|because|unless)\b", re.I)
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+\s*[-*\d.]*\s*")


def best_sentence(hit: Hit, query: str) -> str:
    """The one sentence of a chunk that best answers `query`: a fact, not the whole answer."""
    body = hit.chunk.text.split("\n", 1)[-1]
    q = set(terms(query))
    cands = [s.strip(" -*") for s in _SPLIT.split(body) if len(s.split()) >= 6]
    if not cands:
        return _short(body, 240)
    # Prefer whole sentences that carry a number or a trade-off: that is what makes a critique concrete.
    score = lambda s: (len(q & set(terms(s))) + 0.5 * bool(re.search(r"\d", s)) + 0.5 * s[:1].isupper()
                       + 0.7 * bool(_TRADE_OFF.search(s)))
    return _short(max(cands, key=score).replace("**", ""), 260)
