"""The interview as a state machine, declared in one place.

States are the seven phases (in contract order) and `finished`. Events are what
the candidate's message is (`reading.MessageKind`: an answer, a question, a
request to repeat, "I don't know", a command...). Each transition says which
action the interviewer may take on that event and where the interview goes:
it stays in the phase, moves to the next one, or ends. `Policy.step` is the one
step `(state, event) -> (new state, decision)`; `check` refuses any decision
this table does not allow, so the table is what the code runs, and
`mermaid()` draws the same table for docs/state_machine.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .contract import PHASES, next_phase

Goes = Literal["stay", "next", "end"]


@dataclass(frozen=True)
class Transition:
    event: str  # a MessageKind, or "start"
    action: str  # the contract action of the interviewer's turn
    goes: Goes
    why: str  # when this transition is taken


TRANSITIONS: tuple[Transition, ...] = (
    Transition("start", "ask", "stay", "the opening question: the case's problem"),
    Transition("answer", "critique", "stay", "the answer makes a known mistake for this case"),
    Transition("answer", "probe", "stay", "a concrete choice worth a deeper question about the candidate's own words"),
    Transition("answer", "follow_up", "stay", "a topic of this phase is still open"),
    Transition("answer", "advance", "next", "the phase is covered or its time is up"),
    Transition("answer", "close", "end", "the last phase is covered or the time is up"),
    Transition("question", "answer", "stay", "the candidate asked the interviewer: answer from the case's facts"),
    Transition("repeat", "repeat", "stay", "the question on the table again, in other words"),
    Transition("dont_know", "hint", "stay", "a nudge on the question on the table"),
    Transition("dont_know", "follow_up", "stay", "already nudged: go on to the next open topic"),
    Transition("dont_know", "advance", "next", "already nudged and nothing else open in this phase"),
    Transition("dont_know", "close", "end", "nothing else open and no phase left"),
    Transition("fragment", "follow_up", "stay", "a bare list of names: ask which one and why"),
    Transition("off_topic", "redirect", "stay", "back to the case"),
    Transition("injection", "redirect", "stay", "text aimed at the grader: earns nothing, back to the case"),
    Transition("unknown_command", "redirect", "stay", "an unknown /command: list the commands"),
    Transition("hint", "hint", "stay", "/hint: a nudge on the question on the table"),
    Transition("next", "advance", "next", "/next or a request to move on"),
    Transition("next", "close", "end", "/next in the last phase"),
    Transition("next", "ask", "stay", "/next right after the interviewer moved on by itself: stay in the new phase"),
    Transition("end", "close", "end", "/end"),
)

ALLOWED: dict[tuple[str, str], Goes] = {(t.event, t.action): t.goes for t in TRANSITIONS}


class TransitionError(RuntimeError):
    """A decision the declared machine does not allow: a bug in the policy, never the user's fault."""


def check(event: str, action: str, before: str, after: str, finished: bool) -> None:
    """Raise unless (event, action) is declared and the phase moved the way it says."""
    goes = ALLOWED.get((event, action))
    if goes is None:
        raise TransitionError(f"no transition for event {event!r} with action {action!r}")
    moved = {"stay": after == before and not finished,
             "next": after == next_phase(before) and not finished,
             "end": finished}[goes]
    if not moved:
        raise TransitionError(f"{event}/{action} should {goes} but went {before} -> {'finished' if finished else after}")


def mermaid() -> str:
    """The machine as a mermaid state diagram: phases in order, every event/action on its edge."""
    lines = ["stateDiagram-v2", f"    [*] --> {PHASES[0]}: start / ask"]
    for i, phase in enumerate(PHASES):
        stay = sorted({f"{t.event} / {t.action}" for t in TRANSITIONS if t.goes == "stay" and t.event != "start"})
        lines.append(f"    {phase} --> {phase}: {'<br/>'.join(stay)}")
        nxt = PHASES[i + 1] if i + 1 < len(PHASES) else None
        for t in TRANSITIONS:
            if t.goes == "next" and nxt:
                lines.append(f"    {phase} --> {nxt}: {t.event} / {t.action}")
            if t.goes == "end" and (t.event == "end" or nxt is None):
                lines.append(f"    {phase} --> finished: {t.event} / {t.action}")
    lines.append("    finished --> [*]")
    return "\n".join(dict.fromkeys(lines)) + "\n"


if __name__ == "__main__":  # python -m mlsd_bot.machine: the diagram for docs/state_machine.md
    print(mermaid(), end="")
