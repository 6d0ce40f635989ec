"""One interview session: the state plus the dependencies that drive it.

`Interview` is what the CLI and the browser UI talk to. It owns no globals: every
collaborator (retriever, detector, voice, clock, store) is passed in, and each
user gets their own `Interview`. State is saved (via `on_change`) after the
candidate's message is decided and again after the reply is spoken, so a crash
or refresh mid-reply loses nothing.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

from .cases import Case
from .config import Settings
from .contract import PHASES
from .errors import BadInputError, MlsdError, UnknownIdError
from .depth import DepthGrader
from .facts import FactBook
from .knowledge import Note
from .mistakes import MistakeSpotter, Pitfall, load_pitfalls
from .policy import Decision, Policy, Pushback
from .prompts import Prompts
from .reading import Reader
from .report import Report, build_report, to_markdown
from .retrieval import Retriever
from .signals import RefinedDetector, SignalDetector
from .state import InterviewState, Level, Turn
from .textsafe import clean
from .voice import LLMVoice, OfflineVoice, Voice

if TYPE_CHECKING:
    from .embeddings import MiniLM

MAX_MESSAGE_CHARS = 4000


@dataclass
class Deps:
    """What an interview needs; built once per process, shared read-only by every session."""
    cases: dict[str, Case]
    retriever: Retriever
    detector: SignalDetector | RefinedDetector
    prompts: Prompts
    pitfalls: list[Pitfall]
    spotter: MistakeSpotter
    encoder: MiniLM  # the grader's (detector, spotter, case facts); the retriever has its own
    pushback: dict[tuple[str | None, str], Pushback]
    reader: Reader = field(default_factory=Reader)
    grader: DepthGrader = field(default_factory=DepthGrader)
    voice: Voice = field(default_factory=OfflineVoice)
    clock: Callable[[], float] = time.time
    factbooks: dict[str, FactBook] = field(default_factory=dict)  # filled lazily, one per case

    def with_voice(self, voice: Voice) -> "Deps":
        return dataclasses.replace(self, voice=voice)

    def descriptions(self) -> dict[str, str]:
        """Each signal's description: the report's advice searches the notes with it (report._advice)."""
        return {s: spec.description for s, spec in self.detector.specs.items()}

    def factbook(self, case_id: str) -> FactBook:
        if case_id not in self.factbooks:
            self.factbooks[case_id] = FactBook(self.cases[case_id], self.encoder)
        return self.factbooks[case_id]


def pushback_of(notes: list[Note], retriever: Retriever) -> dict[tuple[str | None, str], Pushback]:
    """Every counterpoint in the notes, with the citation of the indexed chunk that holds it."""
    out = {}
    for note in notes:
        for pid, phase, sentence in note.pushback:
            chunk = next((c for c in retriever.chunks if c.source == note.source and sentence[:80] in c.text), None)
            if chunk is not None:  # an unindexed note cannot be cited: no pushback from it
                out[(note.id if note.kind == "case" else None, pid)] = Pushback(sentence, chunk.citation)
    return out


def build_deps(settings: Settings, voice: str | None = None, clock: Callable[[], float] = time.time) -> Deps:
    """Load the index, detector and prompts; pick the voice from settings (or `voice`)."""
    from .cases import cases_of
    from .embeddings import KNOWLEDGE, get_encoder
    from .knowledge import out_of_service, read_notes
    from .store import open_index
    from .tokens import seed_cache

    seed_cache(settings.data_dir / "tiktoken")
    prompts = Prompts(settings.prompts_dir)
    notes, broken = read_notes(settings.knowledge_dir)  # read once: the cases and the index refresh share them
    for error in broken:  # a broken note takes only its own case out of service
        print(f"mlsd-bot: warning: {out_of_service(error)}", file=sys.stderr)
    encoder = get_encoder()
    retriever = Retriever(open_index(settings, notes=notes, keep=[e.path for e in broken]), get_encoder(KNOWLEDGE))
    pitfalls = load_pitfalls()
    cache = settings.data_dir / "cache"
    deps = Deps(cases={c.id: c for c in cases_of(notes)}, retriever=retriever,
                detector=SignalDetector(encoder, cache_dir=cache), prompts=prompts, pitfalls=pitfalls,
                spotter=MistakeSpotter(pitfalls, encoder, cache_dir=cache), pushback=pushback_of(notes, retriever),
                encoder=encoder, clock=clock)
    if (voice or settings.voice) == "openai":
        from .models import LLMSignalJudge, OpenAIChatModel

        deps.voice = llm_voice(OpenAIChatModel(settings), deps)
        if settings.llm_detect:
            descriptions = {s: spec.description for s, spec in deps.detector.specs.items()}
            deps.detector = RefinedDetector(deps.detector, LLMSignalJudge(settings, prompts, descriptions))
    return deps


def llm_voice(model, deps: Deps) -> LLMVoice:
    topics = {s: (spec.label, spec.description) for s, spec in deps.detector.specs.items()}
    return LLMVoice(model=model, prompts=deps.prompts, topics=topics,
                    minutes_left=lambda st: max(0.0, st.budget_minutes - (deps.clock() - st.started_at) / 60))


class Interview:
    def __init__(self, state: InterviewState, deps: Deps, on_change: Callable[[InterviewState], None] | None = None):
        if state.case_id not in deps.cases:
            raise UnknownIdError("case", state.case_id, sorted(deps.cases))
        self.state, self.deps = state, deps
        self.case = deps.cases[state.case_id]
        self.policy = Policy(self.case, deps.retriever, deps.detector, deps.prompts, deps.reader, deps.grader,
                             deps.spotter, deps.factbook(state.case_id), deps.pushback, deps.clock,
                             score=self._score)
        self._on_change = on_change or (lambda s: None)

    @classmethod
    def new(cls, deps: Deps, case_id: str, level: Level = "senior", budget_minutes: int = 45,
            on_change: Callable[[InterviewState], None] | None = None) -> "Interview":
        now = deps.clock()
        state = InterviewState(case_id=case_id, level=level, budget_minutes=budget_minutes,
                               started_at=now, phase_started_at=now)
        return cls(state, deps, on_change)

    # --- the conversation ----------------------------------------------------

    def open(self) -> Iterator[str]:
        """The opening question (the case's problem statement)."""
        if self.state.turns:
            raise MlsdError("This interview has already started.")
        self.state, decision = self.policy.opening(self.state)
        return self._speak(decision)

    def send(self, text: str) -> Iterator[str]:
        """Answer a candidate message (or /next, /hint, /end); yields the reply in pieces."""
        text = clean(text or "").strip()  # the edge: whatever the caller passed, only clean text goes on
        if self.state.finished:
            raise MlsdError("This interview has ended - start a new one to practise again.")
        if not text:
            raise BadInputError("Type an answer, or /hint, /next or /end.")
        if len(text) > MAX_MESSAGE_CHARS:
            raise BadInputError(f"That message is over {MAX_MESSAGE_CHARS} characters - please split it.")
        self.state.turns.append(Turn(n=len(self.state.turns) + 1, role="candidate", phase=self.state.phase,
                                     text=text, at=self._elapsed()))
        self.state, decision = self.policy.step(self.state, text)
        return self._speak(decision)

    def end(self) -> Iterator[str]:
        return self.send("/end")

    def _score(self, state: InterviewState) -> tuple[int, str]:
        r = self._build_report(state)
        return r.overall.score, r.overall.verdict

    def _speak(self, decision: Decision) -> Iterator[str]:
        """Save the decided turn first, then stream the voice, then save the final words."""
        turn = Turn(n=len(self.state.turns) + 1, role="interviewer", phase=decision.phase, text=decision.draft,
                    at=self._elapsed(), action=decision.action, topic=decision.topic, covered=decision.covered,
                    citations=decision.citations)
        self.state.turns.append(turn)
        self._on_change(self.state)

        def stream() -> Iterator[str]:
            utterance = self.deps.voice.speak(decision, self.state, self.case)
            pieces = []
            for piece in utterance:
                pieces.append(piece)
                yield piece
            turn.text = "".join(pieces).strip() or decision.draft
            turn.notice = utterance.notice
            self._on_change(self.state)

        return stream()

    # --- views ---------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def last_turn(self) -> Turn | None:
        return next((t for t in reversed(self.state.turns) if t.role == "interviewer"), None)

    def turn_json(self, turn: Turn) -> dict:
        """A turn in the contract's shape."""
        n = sum(1 for t in self.state.turns[: turn.n] if t.role == "interviewer")
        return {"type": "turn", "turn": n, "phase": turn.phase, "action": turn.action, "topic": turn.topic,
                "covered": turn.covered, "text": turn.text, "citations": turn.citations}

    def _elapsed(self) -> float:
        return self.deps.clock() - self.state.started_at

    def time_left(self) -> float:
        """Seconds left in the whole interview (never negative)."""
        return max(0.0, self.state.budget_minutes * 60 - self._elapsed())

    def phase_index(self) -> int:
        return PHASES.index(self.state.phase)

    def report(self) -> Report:
        return self._build_report(self.state)

    def _build_report(self, state: InterviewState) -> Report:
        specs = self.deps.detector.specs
        return build_report(state, self.case, self.deps.retriever,
                            labels={s: sp.label for s, sp in specs.items()},
                            descriptions=self.deps.descriptions(), now=self.deps.clock(),
                            pitfall_names={p.id: p.name for p in self.deps.pitfalls})

    def report_markdown(self) -> str:
        return to_markdown(self.report())
