"""Reading a candidate message before grading it: what kind of message is it?

An interviewer first hears *what the candidate is doing* - answering, asking
them something, asking to hear the question again, saying "I don't know",
drifting off topic, or giving a command - and only then what topics an answer
covers. This module decides the form; `signals.py` decides the topics.

Only the sentences returned as `statements` can earn credit: questions to the
interviewer, hedges and text aimed at the grader never do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from .signals import sentences
from .guard import is_injection

DATA = Path(__file__).parent / "data" / "reading.yaml"

MessageKind = Literal["answer", "question", "repeat", "dont_know", "fragment", "off_topic", "injection",
                      "next", "hint", "end", "unknown_command"]
COMMANDS = {"/next": "next", "/hint": "hint", "/end": "end"}
FILLER_ALLOWANCE = 3  # content words a "don't know" message may carry and still be a non-answer
_WORD = re.compile(r"[a-z0-9][a-z0-9'/-]*")
_NUMBER = re.compile(r"\d")
_LIST_SPLIT = re.compile(r",|;|\band\b|\bor\b|/|\+")


@dataclass(frozen=True)
class Reading:
    kind: MessageKind
    statements: list[str] = field(default_factory=list)  # sentences that may earn credit
    questions: list[str] = field(default_factory=list)  # sentences that ask the interviewer something

    @property
    def is_command(self) -> bool:
        return self.kind in ("next", "hint", "end", "unknown_command")


class Reader:
    """Classifies messages with the patterns in data/reading.yaml (form only, no topics)."""

    def __init__(self, path: Path = DATA):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        flags = re.I
        self.move_on = re.compile(raw["move_on"], re.I | re.X)
        self.dont_know = [re.compile(p, flags) for p in raw["dont_know"]]
        self.repeat = [re.compile(p, flags) for p in raw["repeat"]]
        self.ask_opening = [re.compile(p, flags) for p in raw["ask_opening"]]
        self.self_answer = re.compile(raw["self_answer"], flags)
        self.filler = frozenset(raw["filler"].split())
        self.claim_words = frozenset(raw["claim_words"].split())

    def read(self, text: str) -> Reading:
        stripped = text.strip()
        command = self._command(stripped)
        if command:
            return Reading(command)
        if is_injection(stripped):
            return Reading("injection")  # a message that tries to talk to the grader earns nothing at all
        sents = sentences(stripped)
        if not sents:
            return Reading("fragment")
        if any(p.search(stripped) for p in self.repeat) and len(self._content(stripped)) <= 4:
            return Reading("repeat")
        if self._dont_know(stripped):
            return Reading("dont_know")
        questions = [s for i, s in enumerate(sents) if self._asks(s, sents[i + 1:])]
        statements = [s for s in sents if s not in questions and not self._dont_know(s)]
        if questions:
            return Reading("question", statements, questions)
        if all(self.is_fragment(s) for s in statements):
            return Reading("fragment", [], [])
        return Reading("answer", statements, [])

    # --- the parts ------------------------------------------------------------

    def _command(self, text: str) -> MessageKind | None:
        if text.startswith("/"):
            word = text.split()[0].lower()
            return COMMANDS.get(word, "unknown_command")  # type: ignore[return-value]
        return "next" if self.move_on.match(text) else None

    def _content(self, text: str) -> list[str]:
        return [w for w in _WORD.findall(text.lower()) if w not in self.filler]

    def _dont_know(self, text: str) -> bool:
        """A hedge with (almost) no design content: "Not sure, maybe?" / "I really don't know, never did ads"."""
        if not any(p.search(text) for p in self.dont_know):
            return False
        content = self._content(text)
        return len(content) <= FILLER_ALLOWANCE and not any(_NUMBER.search(w) for w in content)

    def _asks(self, sentence: str, rest: list[str]) -> bool:
        """A question to the interviewer (not a rhetorical one the candidate answers next)."""
        s = sentence.strip()
        asks = s.endswith("?") or any(p.search(s) for p in self.ask_opening)
        if not asks:
            return False
        return not (rest and self.self_answer.match(rest[0]))

    def is_fragment(self, sentence: str) -> bool:
        """A verbless list of names ("Embeddings, negative sampling, feature store."): no claim is made."""
        words = _WORD.findall(sentence.lower())
        if not words or any(w in self.claim_words for w in words) or _NUMBER.search(sentence) or ":" in sentence:
            return False  # a claim, a number, or a labelled list ("the features: history, embeddings") answers
        items = [i for i in _LIST_SPLIT.split(sentence.lower()) if i.strip(" .!?-")]
        return len(items) >= 2 and all(len(i.split()) <= 4 for i in items)
