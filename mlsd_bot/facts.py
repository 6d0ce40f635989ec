"""Answering the candidate's questions from the case's facts.

Every case note opens with a `## Facts` section (topic: fact bullets): the
numbers and constraints an interviewer gives when asked. A question is matched
to facts by the topic the detector hears in it (a question about QPS is `scale`),
by shared words with the fact's topic and text ("fraud rate"), and by MiniLM
similarity; a question no fact answers gets "what would you assume?".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cases import Case
from .embeddings import MiniLM
from .retrieval import terms

TOPIC_MATCH = 1.0  # the detector heard the fact's own topic in the question
WORD_WEIGHT = 0.25  # per word the question shares with the fact's topic name
TEXT_WORD_WEIGHT = 0.08  # per rare word shared with the fact's text
SIM_WEIGHT = 1.0
ANSWER_FLOOR = 0.62  # below this no fact answers the question
SECOND_WITHIN = 0.2  # a second fact is given when it scores this close to the best
MAX_FACTS = 2


@dataclass(frozen=True)
class Fact:
    topic: str
    text: str


class FactBook:
    """The facts of one case, with their vectors; built once per case and shared read-only."""

    def __init__(self, case: Case, encoder: MiniLM):
        self.case = case
        self.facts = [Fact(t, x) for t, x in case.facts]
        self.encoder = encoder
        keyed = [f"{f.topic.replace('_', ' ')}: {f.text}" for f in self.facts]
        self.vectors = encoder.encode(keyed) if keyed else np.zeros((0, 384), np.float32)

    @property
    def citation(self) -> str:
        return f"{self.case.source}#facts"

    def lookup(self, question: str, topics: list[str]) -> list[Fact]:
        """The one or two facts that answer `question` (empty: nothing in the case answers it)."""
        if not self.facts:
            return []
        scores = self._scores(question, topics)
        order = np.argsort(-scores)
        best = float(scores[order[0]])
        if best < ANSWER_FLOOR:
            return []
        picked = [self.facts[i] for i in order[:MAX_FACTS] if scores[i] >= max(ANSWER_FLOOR, best - SECOND_WITHIN)]
        # Every topic the candidate asked about gets its fact, not only the best-scoring one.
        for t in topics:
            f = self.fact(t)
            if f and f not in picked and len(picked) < MAX_FACTS + 1:
                picked.append(f)
        return picked

    def fact(self, topic: str) -> Fact | None:
        return next((f for f in self.facts if f.topic == topic), None)

    def _scores(self, question: str, topics: list[str]) -> np.ndarray:
        q = set(terms(question))
        sims = self.vectors @ self.encoder.encode([question])[0]
        out = []
        for f, sim in zip(self.facts, sims):
            topic_words = set(terms(f.topic.replace("_", " ")))
            text_words = {w for w in terms(f.text) if len(w) > 4}
            out.append(TOPIC_MATCH * (f.topic in topics) + WORD_WEIGHT * len(q & topic_words)
                       + TEXT_WORD_WEIGHT * len(q & text_words) + SIM_WEIGHT * float(sim))
        return np.array(out)
