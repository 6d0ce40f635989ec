"""The interviewer's voice: how a decision is put into words.

`OfflineVoice` says the policy's draft as is (templates from prompts/, no LLM).
`LLMVoice` asks a chat model to phrase and deepen the same decision, inside a
token budget; when the model fails, that turn falls back to the offline draft
and the candidate is told - the interview goes on and nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from . import tokens
from .cases import Case
from .contract import PHASE_TITLES, PHASES
from .errors import ModelError
from .models import ChatModel, Message
from .policy import Decision
from .prompts import Prompts
from .state import InterviewState

PROMPT_BUDGET = 3000  # tokens for the whole prompt; small local models have 4k contexts
RECENT_TURNS = 6  # kept verbatim; older ones are condensed
FACT_TOKENS = 80
SUMMARY_LINE_TOKENS = 30


class Utterance:
    """A turn's words as they stream, and after the stream a notice (why the voice fell back), if any.

    The voice returns this instead of writing on the decision: decisions belong to the
    policy, and voices are shared between sessions."""

    def __init__(self, pieces: Callable[["Utterance"], Iterator[str]]):
        self.notice: str | None = None
        self._pieces = pieces(self)

    def __iter__(self) -> Iterator[str]:
        return self._pieces


class Voice(Protocol):
    label: str

    def speak(self, decision: Decision, state: InterviewState, case: Case) -> Utterance: ...


class OfflineVoice:
    label = "offline"

    def speak(self, decision: Decision, state: InterviewState, case: Case) -> Utterance:
        return Utterance(lambda u: iter([decision.draft]))


@dataclass
class LLMVoice:
    model: ChatModel
    prompts: Prompts
    topics: dict[str, tuple[str, str]]  # signal -> (label, description)
    minutes_left: Callable[[InterviewState], float] = lambda state: 0.0  # passed in: the clock is the interview's
    budget: int = PROMPT_BUDGET

    @property
    def label(self) -> str:
        return f"llm:{self.model.name}"

    def speak(self, decision: Decision, state: InterviewState, case: Case) -> Utterance:
        def pieces(u: Utterance) -> Iterator[str]:
            said = False
            try:
                for piece in self.model.stream(self.messages(decision, state, case)):
                    said = True
                    yield piece
            except ModelError as e:
                u.notice = str(e)
                notice = self.prompts.say("fallback_notice", state.session_id)
                yield ("\n\n" if said else "") + notice + "\n\n" + decision.draft

        return Utterance(pieces)

    def messages(self, decision: Decision, state: InterviewState, case: Case) -> list[Message]:
        system = self.prompts.llm("system.j2", level=state.level, case_title=case.title, problem=case.problem,
                                  phases=list(PHASES))
        facts = [tokens.truncate(f, FACT_TOKENS) for f in decision.facts]
        turn = self.prompts.llm("turn.j2", **self._turn_vars(decision, state, facts))
        history = self._history(state, budget=self.budget - tokens.count(system) - tokens.count(turn))
        return [{"role": "system", "content": system}, *history, {"role": "user", "content": turn}]

    def _turn_vars(self, d: Decision, state: InterviewState, facts: list[str]) -> dict:
        label, desc = self.topics.get(d.topic, ("", "")) if d.topic else ("", "")
        return dict(phase=d.phase, phase_title=PHASE_TITLES[d.phase], action=d.action, topic=d.topic, event=d.event,
                    candidate_question=_fence(d.candidate_question) if d.candidate_question else "",
                    topic_label=label, topic_description=desc, facts=facts, draft=d.draft,
                    minutes_left=int(self.minutes_left(state)),
                    next_phase_title=PHASE_TITLES[d.next_phase] if d.next_phase else "")

    def _history(self, state: InterviewState, budget: int) -> list[Message]:
        """Recent turns verbatim; older ones condensed into one summary message; all within budget."""
        turns = state.turns[:-1] if state.turns and state.turns[-1].role == "interviewer" else state.turns
        recent, older = turns[-RECENT_TURNS:], turns[:-RECENT_TURNS]
        msgs = [{"role": "assistant" if t.role == "interviewer" else "user",
                 "content": _fence(t.text) if t.role == "candidate" else t.text} for t in recent]
        if older:
            lines = [dict(role=t.role, phase=t.phase, text=tokens.truncate(t.text, SUMMARY_LINE_TOKENS)) for t in older]
            msgs.insert(0, {"role": "user", "content": self.prompts.llm("summary.j2", turns=lines)})
        while msgs and sum(tokens.count(m["content"]) for m in msgs) > budget:
            msgs.pop(0)  # drop the oldest first: the decision itself is always in the turn prompt
        return msgs


def _fence(text: str) -> str:
    """Candidate words inside tags the system prompt calls data; a closing tag in them cannot end the fence."""
    return "<candidate>" + text.replace("</candidate", "<\\/candidate") + "</candidate>"
