"""Spotting a design mistake the candidate actually made (not one they rejected).

The catalogue (data/pitfalls.yaml, plus case-specific traps in data/case_pitfalls/) gives each pitfall a cheap regex gate, the
cases where it is a mistake, and two sets of example sentences: candidates
making the mistake, and look-alikes that are fine (rejecting it, contrasting
it, the correct counterpart). A sentence is a mistake when

1. a cue matches, outside the scope of a negation or contrast ("not randomly",
   "instead of accuracy", "accuracy is meaningless here"), and
2. its MiniLM embedding is closer to the mistake examples than to the
   look-alikes, by a margin, and close enough to them in absolute terms - a
   much higher bar for a pitfall of another phase than the one being discussed
   (between the two bars the match is only a doubt: pushed back on, but not
   charged unless the candidate repeats the choice after the pushback);
3. of all pitfalls, this one's examples (mistakes or look-alikes) are the
   nearest to the sentence: a sentence about accuracy on rare fraud is not
   about launching on an offline gain, even if both mention AUC;
4. the message does not use the vocabulary of the fix: words that several
   look-alikes share and no mistake example uses ("logQ", "point-in-time",
   "recalibrate"), learned from the catalogue itself.
Thresholds were chosen on the tune cases of bench/data/critiques.jsonl (bench/critiques.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .contract import PHASES, SIGNALS
from .embeddings import MiniLM
from .retrieval import terms
from .signals import encode_cached

PITFALLS = Path(__file__).parent / "data" / "pitfalls.yaml"  # mistakes common to many cases
CASE_PITFALLS = Path(__file__).parent / "data" / "case_pitfalls"  # traps of one or a few cases, a file per group
MISTAKE_FLOOR = 0.55  # cosine to the nearest mistake example, for a pitfall of the phase under discussion
MARGIN = 0.03  # ... and at least this much closer than to the nearest look-alike
CLOSE_FLOOR, CLOSE_MARGIN = 0.5, 0.08  # or: a little less close, but clearly closer to the mistakes
OFF_PHASE_FLOOR = 0.8  # the same for a pitfall of another phase: only an unmistakable match
OFF_PHASE_MARGIN = 0.1
DOUBT_FLOOR, DOUBT_MARGIN = 0.65, 0.2  # another phase's pitfall, clearly nearer its mistakes: ask, charge only if repeated
DOUBT_LEAD = 0.03  # ... and nearer than any other pitfall's examples by this much
NEAREST_SLACK = 0.05  # how far another pitfall's examples may be nearer before this one is ruled out
FIX_WORD_MIN = 2  # a fix word appears in at least this many look-alikes and in no mistake example
_CLAUSE_END = re.compile(r"[,;:()\u2014]|\s-\s|\b(?:but|so|and then|whereas|while|then)\b", re.I)
_NEGATOR = re.compile(r"\b(?:not|no|never|nor|without|instead of|rather than|avoid\w*|against|beyond|other than|"
                      r"stop\w*|unlike|skip\w*|drop\w*|won'?t|wouldn'?t|don'?t|doesn'?t|can'?t|cannot|isn'?t|"
                      r"aren'?t|shouldn'?t|mustn'?t|neither)\b|n't\b", re.I)
_REJECTED_AFTER = re.compile(r"^\W{0,3}(?:\w+\W+){0,4}?(?:is|are|would be|gets?|looks?)\s+(?:\w+\s+)?"
                             r"(?:misleading|meaningless|useless|wrong|a trap|broken|uninformative|not enough|"
                             r"insufficient|not what|no good|pointless|dangerous|risky|biased|leaky)"
                             r"|^\W{0,3}(?:\w+\W+){0,3}?(?:would |will )?(?:leaks?|fails?|breaks?|hides?|misleads?|"
                             r"lies|tells? (?:you )?nothing|can'?t|cannot|won'?t work|doesn'?t work)\b", re.I)


@dataclass(frozen=True)
class Pitfall:
    id: str
    phase: str  # where it is judged and penalised; its pushback lives in this phase's notes
    signal: str  # the signal whose grade an unfixed mistake caps
    name: str  # how the critique names the choice, mid-sentence
    cases: frozenset[str] | None  # where it is a mistake (None: everywhere except fine_in)
    fine_in: frozenset[str]
    cues: tuple[re.Pattern, ...]
    mistake: tuple[str, ...]
    correct: tuple[str, ...]
    question: str
    also_in: frozenset[str] = frozenset()  # other phases where candidates commonly say it (judged as in-phase there)

    def applies_to(self, case: str) -> bool:
        return case not in self.fine_in and (self.cases is None or case in self.cases)

    def heard_in(self, phase: str | None) -> bool:
        """Is `phase` one where this choice is normally discussed (so in-phase thresholds apply)?"""
        return phase is None or phase == self.phase or phase in self.also_in


def load_pitfalls(path: Path = PITFALLS, case_dir: Path | None = CASE_PITFALLS) -> list[Pitfall]:
    """The common catalogue, then the case-specific files (sorted by name); ids are unique across all."""
    files = [path] + (sorted(case_dir.glob("*.yaml")) if case_dir is not None and case_dir.is_dir() else [])
    out = [p for f in files for p in _read_pitfalls(f)]
    seen: set[str] = set()
    for p in out:
        if p.id in seen:
            raise ValueError(f"pitfall id {p.id} is defined twice")
        seen.add(p.id)
    return out


def _read_pitfalls(path: Path) -> list[Pitfall]:
    out = []
    for r in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
        if r["phase"] not in PHASES or r["signal"] not in SIGNALS or not set(r.get("also_in") or ()) <= set(PHASES):
            raise ValueError(f"{path.name}: pitfall {r['id']} has an unknown phase or signal")
        out.append(Pitfall(r["id"], r["phase"], r["signal"], r["name"],
                           frozenset(r["cases"]) if r.get("cases") else None, frozenset(r.get("fine_in") or ()),
                           tuple(re.compile(c, re.I) for c in r["cues"]), tuple(r["mistake"]),
                           tuple(r.get("correct") or ()), r["question"], frozenset(r.get("also_in") or ())))
    return out


@dataclass(frozen=True)
class Spotted:
    pitfall: Pitfall
    sentence: str
    cue: str  # the words of the sentence the cue matched: what the candidate said
    margin: float
    sure: bool = True  # False: another phase's pitfall matched only at the doubt bar (not charged unless repeated)


def rejected(sentence: str, start: int, end: int) -> bool:
    """Is the matched choice negated or contrasted in its own clause ("not randomly", "X is misleading")?"""
    before = sentence[:start]
    clause = _CLAUSE_END.split(before)[-1] if _CLAUSE_END.search(before) else before
    if _NEGATOR.search(clause):
        return True
    after = sentence[end:]
    return bool(_REJECTED_AFTER.search(_CLAUSE_END.split(after)[0] if after else ""))


def fix_words(p: Pitfall) -> set[str]:
    """Words of the fix: shared by several look-alikes, used by no mistake example."""
    counts: dict[str, int] = {}
    for s in p.correct:
        for w in set(terms(s)):
            if len(w) > 3:
                counts[w] = counts.get(w, 0) + 1
    used = {w for s in p.mistake for w in terms(s)}
    return {w for w, c in counts.items() if c >= FIX_WORD_MIN and w not in used}


class MistakeSpotter:
    def __init__(self, pitfalls: list[Pitfall], encoder: MiniLM, cache_dir: Path | None = None):
        self.pitfalls, self.encoder = pitfalls, encoder
        texts = [s for p in pitfalls for s in (*p.mistake, *p.correct)]
        vectors = encode_cached(encoder, texts, cache_dir) if texts else np.zeros((0, 384), np.float32)
        self._all = vectors
        # Each pitfall's examples are one block of rows, mistakes then look-alikes: block i is
        # rows ends[i] - sizes[i] .. ends[i].
        sizes = np.array([len(p.mistake) + len(p.correct) for p in pitfalls], dtype=int)
        ends = np.cumsum(sizes)
        self._vec = {p.id: (vectors[e - n:e - n + len(p.mistake)], vectors[e - n + len(p.mistake):e])
                     for p, n, e in zip(pitfalls, sizes, ends)}
        self._starts = np.minimum(ends - sizes, max(len(texts) - 1, 0))  # (reduceat needs valid indices)
        self._empty = sizes == 0
        self._index = {p.id: i for i, p in enumerate(pitfalls)}
        self._fix = {p.id: fix_words(p) for p in pitfalls}

    def spot(self, sentences: list[str], case: str, phase: str | None = None,
             skip: set[str] = frozenset()) -> list[Spotted]:
        """Mistakes in `sentences` (one message), best first; pitfalls in `skip` (already raised) are not looked for."""
        words = {w for s in sentences for w in terms(s)}
        # A mistake may need its neighbour for context ("Phishing is 1 in 1,000; I'd report ROC-AUC."),
        # so the whole message is read as one more unit.
        joined = " ".join(sentences) if 1 < len(sentences) <= 4 else None
        sentences = sentences + [joined] if joined else sentences
        gated = [(p, s, m) for p in self.pitfalls
                 if p.id not in skip and p.applies_to(case) and not self._fix[p.id] & words
                 for s in sentences for m in [self._cue(p, s)] if m]
        if not gated:
            return []
        unique = sorted({s for _, s, _ in gated})
        vectors = dict(zip(unique, self.encoder.encode(unique)))
        nearest = {s: self._best_per_pitfall(v) for s, v in vectors.items()}
        found = []
        for p, s, m in gated:
            v, best = vectors[s], nearest[s]
            # Is `p` (within a little slack) the pitfall whose examples are nearest to this sentence?
            if best[self._index[p.id]] < best.max() - NEAREST_SLACK:
                continue
            mis, cor = self._vec[p.id]
            sim_m = float((mis @ v).max()) if len(mis) else 0.0
            sim_c = float((cor @ v).max()) if len(cor) else 0.0
            if p.heard_in(phase):
                sure = ((sim_m >= MISTAKE_FLOOR and sim_m - sim_c >= MARGIN)
                        or (sim_m >= CLOSE_FLOOR and sim_m - sim_c >= CLOSE_MARGIN))
                doubt = False
            else:
                sure = sim_m >= OFF_PHASE_FLOOR and sim_m - sim_c >= OFF_PHASE_MARGIN
                # a doubt must stand in one sentence: joined up, one sentence's cue meets another's meaning
                doubt = (s != joined and sim_m >= DOUBT_FLOOR and sim_m - sim_c >= DOUBT_MARGIN
                         and self._lead(best, self._index[p.id]) >= DOUBT_LEAD)
            if sure or doubt:
                found.append(Spotted(p, s, m.group(0), sim_m - sim_c, sure))
        return sorted(found, key=lambda f: (not f.sure, -f.margin))

    def _best_per_pitfall(self, v: np.ndarray) -> np.ndarray:
        """The similarity of `v` to each pitfall's nearest example (-1 for a pitfall without any)."""
        best = np.maximum.reduceat(self._all @ v, self._starts)
        best[self._empty] = -1.0
        return best

    @staticmethod
    def _lead(best: np.ndarray, i: int) -> float:
        """How much nearer pitfall i's examples are than any other pitfall's."""
        return float(best[i] - np.delete(best, i).max()) if len(best) > 1 else 1.0

    @staticmethod
    def _cue(p: Pitfall, sentence: str) -> re.Match | None:
        """The first cue match that is not negated or contrasted."""
        for cue in p.cues:
            for m in cue.finditer(sentence):
                if not rejected(sentence, m.start(), m.end()):
                    return m
        return None
