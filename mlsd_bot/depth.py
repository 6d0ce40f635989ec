"""How deep one sentence goes on one signal, 0-3, the way an interviewer grades it.

0 not covered, only asked about, or hedged with nothing concrete; 1 mentioned;
2 specific (a quantity, or a named method / metric / choice for that signal);
3 justified (specific, and why: a trade-off, an alternative rejected, a pitfall
avoided). A sentence that lists names instead of choosing stays at 1. The
features are in data/depth.yaml; this module only combines them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DATA = Path(__file__).parent / "data" / "depth.yaml"


@dataclass(frozen=True)
class Grade:
    depth: int  # 0..3
    why: str  # which feature decided it, in words a candidate understands


class DepthGrader:
    def __init__(self, path: Path = DATA):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.quantity = re.compile(raw["quantity"], re.I)
        self.justification = re.compile(raw["justification"], re.I)
        self.hedge = re.compile(raw["hedge"], re.I)
        self.enumeration = int(raw["enumeration_terms"])
        self.terms = {s: re.compile(r"(?<![\w-])(?:" + "|".join(t.strip() for t in ts.split(", ")) + r")(?![\w-])", re.I)
                      for s, ts in raw["terms"].items()}
        self._any_term = re.compile("|".join(f"(?:{p.pattern})" for p in self.terms.values()), re.I)

    def grade(self, sentence: str, signal: str, context: str = "") -> Grade:
        """`context` is the rest of the same message: a reason may come in the next sentence."""
        named = self.terms[signal].search(sentence)
        number = self.quantity.search(sentence)
        specific = bool(named or number)
        hedged = bool(self.hedge.search(sentence))
        if hedged and not specific:
            return Grade(0, "hedged, nothing concrete")
        if not specific:
            return Grade(1, "mentioned, nothing specific")
        reason = self.justification.search(sentence) or self.justification.search(context)
        if self._lists(sentence) and not (reason or number):
            return Grade(1, "a list of names, no choice made")
        if reason and not hedged:
            return Grade(3, "specific, with the reason")
        return Grade(2, "specific (a number or a named method)")

    def _lists(self, sentence: str) -> bool:
        """Names listed side by side ("Offline metrics: AUC, precision, recall, NDCG"), no choice among them."""
        body = sentence.split(":", 1)[-1]
        items = [i for i in re.split(r",|;|\band\b|\bor\b", body) if i.strip(" .!?")]
        return len(items) >= self.enumeration and all(len(i.split()) <= 4 for i in items)

    def named_term(self, sentence: str, signal: str | None = None) -> str | None:
        """The concrete choice a sentence names (for a question about the candidate's own words)."""
        pattern = self.terms[signal] if signal else self._any_term
        m = pattern.search(sentence)
        return m.group(0) if m else None
