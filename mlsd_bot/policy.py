"""The interviewer's policy: read each candidate message, then decide the next move.

`Policy.step(state, text)` is the one pure step of the state machine declared in
`machine.py`: it returns a new state and a `Decision` (action, topic, citations,
the offline words) and never touches the state it was given. Phases only move
forward. The voice (offline templates or an LLM) only phrases a decision.

How a strong interviewer behaves, and where it is in this file:
- questions to the interviewer are answered from the case's facts (`_on_question`);
- "repeat that?", "I don't know", off-topic talk and text aimed at the grader
  earn nothing and get a short, fitting reply (`_on_repeat`, `_on_dont_know`, `_redirect`);
- answers are read in the light of the question on the table, graded for depth,
  checked for known mistakes (`_on_answer`); a mistake gets grounded pushback,
  a concrete choice may get one deeper question about the candidate's own words;
- no running commentary on what was "covered", and no question about a topic the
  candidate has covered or was already asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .cases import Case
from .contract import PHASE_TITLES, SIGNAL_PHASE, Action, next_phase, phase_signals
from .depth import DepthGrader
from .facts import FactBook
from .machine import check
from .mistakes import MistakeSpotter, Spotted
from .prompts import Prompts, mid_sentence
from .reading import Reader, Reading
from .retrieval import Retriever
from .signals import Detection, SignalDetector, sentences
from .state import Evidence, InterviewState, Mistake

QUOTE_WORDS = 22  # a critique quotes the candidate's words, not their whole message
OFF_TOPIC_FLOOR = 0.3  # below this similarity to every signal, a message with no signal is off topic
AHEAD_MIN = 2  # signals of the next phase in one answer (and more than of this one) to follow the candidate there
PROBE_BEFORE = 0.6  # probe a choice only in the first 60% of a phase's time
# Design choices worth a "why this one?" (labels are the case's facts and drift a risk, not choices).
CHOICE_SIGNALS = frozenset({"features", "sampling", "architecture", "multi_stage", "loss", "offline_metrics",
                            "ab_testing", "serving", "optimization", "retraining"})


@dataclass
class Decision:
    action: Action
    phase: str  # the phase this turn belongs to (after an advance: the new one)
    draft: str  # the offline interviewer's words; an LLM voice may rephrase them
    event: str = "answer"  # what the candidate's message was (reading.MessageKind)
    topic: str | None = None
    covered: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    next_phase: str | None = None
    candidate_question: str = ""  # for `answer`: what the candidate asked


@dataclass(frozen=True)
class Pushback:
    """A counterpoint sentence from the knowledge base and the chunk that holds it."""
    sentence: str
    citation: str


@dataclass
class Policy:
    """Everything a decision depends on, passed in (no globals)."""
    case: Case
    retriever: Retriever
    detector: SignalDetector  # or a RefinedDetector: the same detect() and specs
    prompts: Prompts
    reader: Reader
    grader: DepthGrader
    spotter: MistakeSpotter
    facts: FactBook
    pushback: dict[tuple[str | None, str], Pushback]  # (case or None for framework, pitfall id) -> counterpoint
    clock: Callable[[], float]
    score: Callable[[InterviewState], tuple[int, str]] = lambda state: (0, "no_hire")  # for the closing words

    # --- the step ------------------------------------------------------------

    def opening(self, state: InterviewState) -> tuple[InterviewState, Decision]:
        new = state.model_copy(deep=True)
        new.pending, new.pending_text = self._opening_topics(new.phase), ""
        d = Decision("ask", new.phase, self.prompts.say("open", self._seed(new), problem=self.case.problem),
                     event="start")
        new.pending_text = d.draft
        return new, d

    def step(self, state: InterviewState, text: str) -> tuple[InterviewState, Decision]:
        """The next move after candidate message `text` (already the last turn of `state`)."""
        new = state.model_copy(deep=True)
        reading = self.reader.read(text)
        before = new.phase
        decision = self._decide(new, reading, text)
        check(decision.event, decision.action, before, new.phase, new.finished)
        new.auto_advanced = decision.action == "advance" and decision.event != "next"
        if decision.action not in ("answer", "repeat", "redirect") and decision.topic is not None:
            new.pending = [decision.topic]
        return new, decision

    def _decide(self, state: InterviewState, reading: Reading, text: str) -> Decision:
        kind = reading.kind
        if kind == "end":
            return self.close(state, "end")
        if kind == "next":
            if state.auto_advanced:
                return self._stay_in_new_phase(state)
            state.skipped.append(state.phase)
            return self.advance(state, "", reason="asked", event="next")
        if kind == "hint":
            return self.hint(state, "hint")
        if kind == "question":
            return self._on_question(state, reading)
        if kind == "repeat":
            return self._on_repeat(state)
        if kind == "dont_know":
            return self._on_dont_know(state)
        if kind in ("injection", "unknown_command"):
            return self._redirect(state, kind)
        if kind == "fragment":
            return self._on_fragment(state, text)
        return self._on_answer(state, reading)

    # --- what the candidate said ---------------------------------------------

    def _on_answer(self, state: InterviewState, reading: Reading) -> Decision:
        said = " ".join(reading.statements)
        det = self.detector.detect(said, state.phase, context=state.pending)
        if not det.signals and det.relevance < OFF_TOPIC_FLOOR and not self.grader.named_term(said):
            return self._redirect(state, "off_topic")
        self._check_fix(state, reading)
        spotted = self._confirm(state, self._spot(state, reading))
        covered = self._record(state, det, said, spotted)
        if spotted:
            critique = self._critique(state, spotted[0], covered)
            if critique:
                return critique
        along = self._follow_along(state, covered)
        if along:
            return along
        if self._time_up(state):
            state.timed_out.append(state.phase)
            return self.advance(state, "", reason="time", covered=covered)
        probe = self._probe(state, det, covered)
        if probe:
            return probe
        ack = self.prompts.say("ack", self._seed(state))
        return (self._follow_up(state, ack, covered, "answer")
                or self.advance(state, ack, reason="covered", covered=covered))

    def _on_question(self, state: InterviewState, reading: Reading) -> Decision:
        """Answer from the case's facts; statements in the same message still count (a mistaken one earns nothing)."""
        covered: list[str] = []
        if reading.statements:
            said = " ".join(reading.statements)
            covered = self._record(state, self.detector.detect(said, state.phase, context=state.pending), said,
                                   self._spot(state, reading))
        asked = " ".join(reading.questions)
        heard = self.detector.detect(asked, state.phase)
        topics = heard.signals
        if not topics and heard.relevance < OFF_TOPIC_FLOOR and not covered:
            return self._redirect(state, "off_topic")  # "what's your favourite film?" gets no fact
        facts = self.facts.lookup(asked, topics)
        seed = self._seed(state)
        topic = (facts[0].topic if facts and facts[0].topic in SIGNAL_PHASE else None) or (topics[0] if topics else None)
        for t in [f.topic for f in facts] + topics:
            if t not in state.clarified:
                state.clarified.append(t)
            if t in SIGNAL_PHASE and f"q:{t}" not in state.asked:
                state.asked.append(f"q:{t}")  # told: the interviewer will not ask the candidate for it
        if state.phase == "clarify":
            state.clarify_questions += 1
        go_on = self.prompts.say(f"go_on.{'clarify' if state.phase == 'clarify' else 'other'}", seed)
        if facts:
            text = self.prompts.say("answer", seed, facts=" ".join(_sentence(f.text) for f in facts), go_on=go_on)
            cites = [self.facts.citation]
        else:
            text = self.prompts.say("answer_assume", seed)
            cites = []
        return Decision("answer", state.phase, text, event="question", topic=topic, covered=covered,
                        citations=cites, facts=[f"{f.topic}: {f.text}" for f in facts], candidate_question=asked)

    def _on_repeat(self, state: InterviewState) -> Decision:
        """The question on the table again, in other words (a phase's opening, or the topic's question)."""
        topic = state.pending[0] if state.pending else None
        seed = self._seed(state)
        openers = self.prompts.options(f"phase_open.{state.phase}")
        if len(state.turns) <= 2 and state.phase == "clarify":
            question = self.prompts.say("repeat_problem", seed, problem=self.case.problem)
        elif any(o in state.pending_text for o in openers) or topic not in SIGNAL_PHASE:
            question = (self.prompts.say_unused(f"phase_open.{state.phase}", seed, [state.pending_text])
                        or self.prompts.say(f"phase_open.{state.phase}", seed))
        else:
            options = self.prompts.questions[topic]["ask"] + self.prompts.questions[topic]["deep"]
            fresh = [q for q in options if q != state.pending_text] or options
            question = fresh[len(state.turns) % len(fresh)]
        text = self.prompts.say("repeat", seed, question=question)
        return Decision("repeat", state.phase, text, event="repeat", topic=topic if topic in SIGNAL_PHASE else None)

    def _on_dont_know(self, state: InterviewState) -> Decision:
        """A nudge on the question on the table the first time; after that, go on to something else."""
        topic = next((t for t in state.pending if t in SIGNAL_PHASE and t not in state.covered), None)
        if topic and topic not in state.hints.get(state.phase, []):
            return self.hint(state, "dont_know", topic)
        seed = self._seed(state)
        return (self._follow_up(state, self.prompts.say("dont_know_move_on", seed), [], "dont_know")
                or self.advance(state, self.prompts.say("dont_know_move_on", seed), reason="covered",
                                event="dont_know"))

    def _on_fragment(self, state: InterviewState, text: str) -> Decision:
        det = self.detector.detect(text, state.phase, context=state.pending)
        topic = det.signals[0] if det.signals else (state.pending[0] if state.pending else None)
        draft = self.prompts.say("fragment", self._seed(state))
        return Decision("follow_up", state.phase, draft, event="fragment", topic=topic)

    def _redirect(self, state: InterviewState, kind: str) -> Decision:
        question = state.pending_text or self.prompts.say(f"phase_open.{state.phase}", self._seed(state))
        slot = {"off_topic": "redirect", "injection": "redirect_injection", "unknown_command": "unknown_command"}[kind]
        text = self.prompts.say(slot, self._seed(state), question=_last_question(question))
        return Decision("redirect", state.phase, text, event=kind)

    # --- the interviewer's moves -----------------------------------------------

    def close(self, state: InterviewState, event: str, covered: list[str] | None = None) -> Decision:
        state.finished = True
        score, verdict = self.score(state)
        summary = self.prompts.say("close_summary", state.session_id, score=score, verdict=verdict.replace("_", " "))
        return Decision("close", state.phase, self.prompts.say("close", self._seed(state), summary=summary),
                        event=event, covered=covered or [])

    def advance(self, state: InterviewState, ack: str, reason: str, covered: list[str] | None = None,
                event: str = "answer") -> Decision:
        nxt = next_phase(state.phase)
        while nxt is not None and event == "answer" and self._answered(state, nxt):
            nxt = next_phase(nxt)  # the candidate ran ahead and answered it in depth: don't ask it again
        if nxt is None:
            return self.close(state, event, covered)
        seed = self._seed(state)
        slot = "transition_time" if reason == "time" else "transition"
        opener = self.prompts.say(f"phase_open.{nxt}", seed)
        words = [ack, self.prompts.say(slot, seed, phase_title=mid_sentence(PHASE_TITLES[nxt])), opener]
        self._enter(state, nxt)
        state.pending, state.pending_text = self._opening_topics(nxt), opener
        return Decision("advance", nxt, " ".join(w for w in words if w), event=event, covered=covered or [],
                        next_phase=nxt)

    def _follow_along(self, state: InterviewState, covered: list[str]) -> Decision | None:
        """The answer is mostly about the next phase: the candidate moved on, so go with them
        (asking about what is still open there) instead of pulling them back."""
        nxt = next_phase(state.phase)
        if nxt is None:
            return None
        there = [s for s in covered if SIGNAL_PHASE[s] == nxt]
        here = [s for s in covered if SIGNAL_PHASE[s] == state.phase]
        if len(there) < AHEAD_MIN or len(there) <= len(here):
            return None
        self._enter(state, nxt)
        seed = self._seed(state)
        lead = self.prompts.say("follow_along", seed, phase_title=mid_sentence(PHASE_TITLES[nxt]))
        asked = self._follow_up(state, lead, covered, "answer")
        if asked is None:  # nothing open there either: on to the phase after it
            return self.advance(state, lead, reason="covered", covered=covered)
        state.pending = [asked.topic]
        return Decision("advance", nxt, f"{lead} {state.pending_text}", covered=covered, next_phase=nxt)

    def _enter(self, state: InterviewState, phase: str) -> None:
        state.phase, state.phase_started_at = phase, self.clock()
        state.asked.append(f"open:{phase}")

    def _stay_in_new_phase(self, state: InterviewState) -> Decision:
        """/next right after an automatic move: the candidate meant the phase they had, not this one."""
        text = self.prompts.say("already_moved", self._seed(state), phase_title=mid_sentence(PHASE_TITLES[state.phase]))
        return Decision("ask", state.phase, text, event="next")

    def hint(self, state: InterviewState, event: str, topic: str | None = None) -> Decision:
        """A nudge on the question on the table (or the next open topic when that one is settled)."""
        given = state.hints.setdefault(state.phase, [])
        pending = [t for t in state.pending if t in SIGNAL_PHASE and t not in state.covered and t not in given]
        topic = topic or next(iter(pending), None) or next((s for s in self._missing(state) if s not in given), None)
        if topic is None:
            return Decision("hint", state.phase, self.prompts.say("hint_none", self._seed(state)), event=event)
        given.append(topic)
        hint = self.prompts.question(topic, "hint", self._seed(state))
        return Decision("hint", state.phase, self.prompts.say("hint", self._seed(state), hint=hint), event=event,
                        topic=topic)

    def _follow_up(self, state: InterviewState, ack: str, covered: list[str], event: str) -> Decision | None:
        topic = next((s for s in self._missing(state) if f"q:{s}" not in state.asked and s not in covered), None)
        if topic is None:
            return None
        state.asked.append(f"q:{topic}")
        kind = "deep" if state.level == "staff" else "ask"
        question = self.prompts.question(topic, kind, self._seed(state))
        state.pending_text = question
        text = self.prompts.say("follow_up", self._seed(state), ack=ack, question=question)
        return Decision("follow_up", state.phase, text, event=event, topic=topic, covered=covered)

    def _critique(self, state: InterviewState, spotted: Spotted, covered: list[str]) -> Decision | None:
        p = spotted.pitfall
        push = self.pushback.get((self.case.id, p.id)) or self.pushback.get((None, p.id))
        if push is None:
            return None  # no grounded counterpoint: say nothing rather than something unfounded
        state.mistakes[p.id] = Mistake(pitfall=p.id, phase=p.phase, signal=p.signal, quote=_short(spotted.sentence, 40),
                                       turn=len(state.turns), doubt=not spotted.sure)
        state.critiques[p.id] = p.phase
        state.pending, state.pending_text = [p.signal], p.question
        slot = "critique" if spotted.sure else "critique_doubt"
        text = self.prompts.say(slot, self._seed(state), quote=_quote(spotted.sentence, spotted.cue),
                                choice=p.name, fact=push.sentence, question=p.question)
        return Decision("critique", state.phase, text, topic=p.signal, covered=covered, citations=[push.citation],
                        facts=[push.sentence])

    def _probe(self, state: InterviewState, det: Detection, covered: list[str]) -> Decision | None:
        """One deeper question per phase about a concrete choice the candidate just made, in their words."""
        if f"probe:{state.phase}" in state.asked or self.clock() - state.phase_started_at > PROBE_BEFORE * state.phase_budget(state.phase):
            return None
        for sid in covered:
            ev = state.covered.get(sid)
            if sid not in CHOICE_SIGNALS or SIGNAL_PHASE[sid] != state.phase or ev is None or ev.depth < 2:
                continue
            term = self.grader.named_term(det.quotes[sid], sid)
            if not term:
                continue
            used = [k[len("pq:"):] for k in state.asked if k.startswith("pq:")]
            question = self.prompts.say_unused("probe_question", self._seed(state), used, term=term)
            if question is None:
                return None
            state.asked += [f"probe:{state.phase}", f"pq:{question}"]
            state.pending, state.pending_text = [sid], question
            text = self.prompts.say("probe", self._seed(state), question=question)
            return Decision("probe", state.phase, text, topic=sid, covered=covered)
        return None

    # --- bookkeeping ---------------------------------------------------------

    def _record(self, state: InterviewState, det: Detection, said: str, spotted: list[Spotted]) -> list[str]:
        """Grade each signal the answer carries; keep the deepest sentence as evidence. Returns the credited ids."""
        n = len(state.turns)
        wrong = {s.sentence for s in spotted if s.sure}  # a doubt does not take the sentence's credit away
        credited = []
        for sid in det.signals:
            graded = [(0 if q in wrong else g.depth, q, g) for q in det.sentences_for(sid)
                      for g in [self.grader.grade(q, sid, context=said)]]
            depth, quote, grade = max(graded, key=lambda x: x[0])  # the first of the deepest
            if depth == 0:
                continue
            credited.append(sid)
            old = state.covered.get(sid)
            if old is None or depth > old.depth:
                state.covered[sid] = Evidence(signal=sid, said_in=state.phase, quote=_short(quote, 60), turn=n,
                                              depth=depth, why=grade.why,
                                              prompted=old.prompted if old else sid in state.pending)
        return credited

    def _spot(self, state: InterviewState, reading: Reading) -> list[Spotted]:
        """The mistakes in the candidate's statements, minus those already charged."""
        return self.spotter.spot(reading.statements, self.case.id, state.phase,
                                 skip={m.pitfall for m in state.charged()})

    @staticmethod
    def _confirm(state: InterviewState, spotted: list[Spotted]) -> list[Spotted]:
        """A doubt made again, unmistakably, is charged without asking twice; doubts seen again stay as they are."""
        for s in spotted:
            m = state.mistakes.get(s.pitfall.id)
            if m is not None and s.sure:
                m.doubt, m.fixed = False, False
        return [s for s in spotted if s.pitfall.id not in state.mistakes]

    def _check_fix(self, state: InterviewState, reading: Reading) -> None:
        """An answer right after pushback that no longer makes the mistake fixes it (partly recovers the grade);
        one that makes it again confirms a doubt (it is charged from then on)."""
        last = next((t for t in reversed(state.turns) if t.role == "interviewer"), None)
        if last is None or last.action != "critique":
            return
        open_ = [m for m in state.mistakes.values() if not m.fixed and m.turn == last.n - 1]
        for m in open_:
            again = self.spotter.spot(reading.statements, self.case.id, m.phase, skip=set(state.mistakes) - {m.pitfall})
            if any(s.pitfall.id == m.pitfall for s in again):
                m.doubt = False
            elif len(" ".join(reading.statements).split()) >= 6:
                m.fixed, m.fix_quote = True, _short(" ".join(reading.statements), 40)

    def _missing(self, state: InterviewState) -> list[str]:
        """Uncovered signals of the current phase, core ones first (mid level skips optional ones)."""
        sigs = [s for s in phase_signals(state.phase) if s not in state.covered]
        core = [s for s in sigs if s not in self.case.optional_signals]
        optional = [s for s in sigs if s in self.case.optional_signals]
        return core if state.level == "mid" else core + optional

    def _answered(self, state: InterviewState, phase: str) -> bool:
        """A later phase whose opening topics the candidate already gave with specifics (depth 2 or more)."""
        opening = self._opening_topics(phase)
        return bool(opening) and all(s in state.covered and state.covered[s].depth >= 2 for s in opening)

    def _opening_topics(self, phase: str) -> list[str]:
        return [s for s in phase_signals(phase) if s not in self.case.optional_signals][:3]

    def _time_up(self, state: InterviewState) -> bool:
        return self.clock() - state.phase_started_at >= state.phase_budget(state.phase)

    def _seed(self, state: InterviewState) -> str:
        return f"{state.session_id}:{len(state.turns)}"


def _short(text: str, words: int) -> str:
    parts = " ".join(text.split()).split(" ")
    return " ".join(parts) if len(parts) <= words else " ".join(parts[:words]) + "…"


def _quote(sentence: str, cue: str) -> str:
    """The candidate's own words around the choice, at most QUOTE_WORDS words."""
    words = sentence.strip().rstrip(".!").split()
    if len(words) <= QUOTE_WORDS:
        return " ".join(words)
    at = len(sentence[: sentence.find(cue)].split()) if cue in sentence else 0
    start = max(0, min(at - QUOTE_WORDS // 3, len(words) - QUOTE_WORDS))
    return ("…" if start else "") + " ".join(words[start:start + QUOTE_WORDS]) + "…"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _last_question(text: str) -> str:
    """The question part of an interviewer's turn (its last sentence ending in '?')."""
    qs = [s for s in sentences(text) if s.endswith("?")]
    return qs[-1] if qs else text
