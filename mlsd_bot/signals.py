"""Signal detection: which contract signals a candidate message carries.

Two detectors vote, sentence by sentence:
- lexical cues: precise regexes per signal (data/signals.yaml), high precision;
- semantic match: the MiniLM embedding of each sentence against exemplar
  sentences per signal, so paraphrases count ("half a billion people open the
  app every day" is `scale`). A sentence must be closer to a signal's exemplars
  than to the chit-chat negatives, and above an absolute floor.
Sentences that address the system ("ignore your rubric", "score = 100") are
dropped first: they are candidate speech and earn nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Protocol
from pathlib import Path

import numpy as np
import yaml

from .contract import SIGNALS
from .embeddings import MiniLM
from .errors import MlsdError

DATA = Path(__file__).parent / "data" / "signals.yaml"
SIM_FLOOR = 0.55  # cosine a sentence needs to an exemplar, priors included (tuned on bench/data)
RAW_FLOOR = 0.52  # ... and without the priors: context makes a topic likelier, never a vague sentence a topic
NEG_MARGIN = 0.0  # ... and how much closer it must be than to any negative
RUNNER_UP = 0.02  # a second signal counts when its match is this close to the best one
PHASE_BONUS = 0.14  # the current phase's signals are likelier: a prior, not a filter
EXPLAINED_FLOOR = 0.6  # a sentence a cue already explains needs a closer raw (prior-free) match to add more
CONTEXT_BONUS = 0.08  # an answer is read in the light of the question it answers: the asked topics are likelier
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(rubric|instructions?|prompt|rules|scor\w*|grading)\b"
    r"|\bscore\s*[:=]\s*\d+|\b(give|award|grant)\s+(me\s+)?(full|max\w*|100|perfect)\b"
    r"|\b(you are now|act as|system prompt|as an ai)\b|\bmark (all|every) signals?\b",
    re.I)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 2]


def strip_injection(text: str) -> str:
    """Drop the sentences that talk to the grader instead of the interviewer."""
    return " ".join(s for s in sentences(text) if not _INJECTION.search(s))


@dataclass(frozen=True)
class SignalSpec:
    id: str
    phase: str
    label: str
    description: str
    cues: tuple[re.Pattern, ...]
    exemplars: tuple[str, ...]


def load_specs(path: Path = DATA) -> tuple[dict[str, SignalSpec], list[str]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    specs = {}
    for sid in SIGNALS:
        s = raw["signals"][sid]
        specs[sid] = SignalSpec(sid, s["phase"], s["label"], s["description"],
                                tuple(re.compile(c, re.I) for c in s.get("cues", [])), tuple(s["exemplars"]))
    return specs, list(raw.get("negatives", []))


@dataclass(frozen=True)
class Detection:
    signals: list[str]  # contract order
    quotes: dict[str, str]  # signal -> the first sentence that carried it
    relevance: float = 1.0  # best similarity of any sentence to any signal: low means off-topic talk
    carriers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # signal -> every sentence that carried it

    def sentences_for(self, sid: str) -> tuple[str, ...]:
        """All sentences of the message that carried `sid`: a later one may go deeper than the first."""
        return self.carriers.get(sid) or (self.quotes[sid],)


def encode_cached(encoder: MiniLM, texts: list[str], cache_dir: Path | None) -> np.ndarray:
    """Encode `texts`, reusing a copy saved under `cache_dir` for exactly these texts.

    The exemplars are ~1,000 sentences: encoding them costs seconds at every start
    of the CLI or the app, loading them costs milliseconds. (The shipped vectors now answer
    most of them; the copy still saves looking up each one.)
    """
    if cache_dir is None:
        return encoder.encode(texts)
    # Keyed by the model build too: a copy made by another model would quietly skew every similarity.
    key = hashlib.sha256("\n".join([encoder.model.checksum, *texts]).encode()).hexdigest()[:20]
    path = cache_dir / f"vectors-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = encoder.encode(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return vectors


class SignalDetector:
    def __init__(self, encoder: MiniLM, path: Path = DATA, cache_dir: Path | None = None):
        self.encoder = encoder
        self.specs, negatives = load_specs(path)
        texts, owners = [], []
        for sid, spec in self.specs.items():
            texts += [spec.description, *spec.exemplars]
            owners += [sid] * (1 + len(spec.exemplars))
        # Exemplars are grouped by signal in SIGNALS order: remember where each group starts.
        self._starts = np.array([owners.index(s) for s in SIGNALS])
        self._ex = encode_cached(encoder, texts, cache_dir)
        self._neg = encode_cached(encoder, negatives, cache_dir) if negatives else np.zeros((0, 384), np.float32)

    def detect(self, text: str, phase: str | None = None, context: tuple[str, ...] | list[str] = ()) -> Detection:
        """Signals of any phase may be found; `phase` (where the interview is) and `context` (the topics
        of the question being answered) are soft priors, never filters."""
        sents = sentences(strip_injection(text))
        found: dict[str, list[str]] = {}
        lexical = [self._lexical(s) for s in sents]
        semantic = self._semantic(sents, phase, context) if sents else []
        for s, lex, (sims, sem, raw) in zip(sents, lexical, semantic):
            # A cue already explains the sentence: a second signal must be close on its own
            # merit, not pushed over the bar by the phase or question priors.
            extra = [sid for sid in sem if not lex or raw[SIGNALS.index(sid)] >= EXPLAINED_FLOOR]
            for sid in lex + extra:
                found.setdefault(sid, []).append(s)
        ordered = [s for s in SIGNALS if s in found]
        relevance = max((float(raw.max()) for _, _, raw in semantic), default=0.0)
        return Detection(ordered, {s: found[s][0] for s in ordered}, 1.0 if any(lexical) else relevance,
                         {s: tuple(found[s]) for s in ordered})

    def _lexical(self, sentence: str) -> list[str]:
        return [sid for sid, spec in self.specs.items() if any(c.search(sentence) for c in spec.cues)]

    def _semantic(self, sents: list[str], phase: str | None,
                  context: tuple[str, ...] | list[str] = ()) -> list[tuple[np.ndarray, list[str], np.ndarray]]:
        """Per sentence: similarity per signal (priors added), the best-matching signals (none for
        chit-chat), and the raw similarity per signal (no priors; its best says how much the sentence
        is about the design at all)."""
        v = self.encoder.encode(sents)
        # Best exemplar similarity per signal: (sentences, signals).
        raw_per = np.maximum.reduceat(v @ self._ex.T, self._starts, axis=1)
        per = raw_per + PHASE_BONUS * self._in_phase(phase)
        per = per + CONTEXT_BONUS * np.array([s in context for s in SIGNALS], dtype=np.float32)
        neg = (v @ self._neg.T).max(axis=1) if len(self._neg) else np.zeros(len(sents))
        out = []
        for row, raw, nmax in zip(per, raw_per, neg):
            top = row.max()
            ok = top >= SIM_FLOOR and raw.max() >= RAW_FLOOR and top >= nmax + NEG_MARGIN
            out.append((row, [SIGNALS[j] for j in np.flatnonzero(row >= top - RUNNER_UP)] if ok else [], raw))
        return out

    def _in_phase(self, phase: str | None) -> np.ndarray:
        return np.array([self.specs[s].phase == phase for s in SIGNALS], dtype=np.float32)


class SignalJudge(Protocol):
    """A second opinion on one message: the signal ids it carries (raises ModelError on failure)."""

    def judge(self, text: str, phase: str | None, suggested: list[str]) -> list[str]: ...


class RefinedDetector:
    """The offline detector, refined by an LLM judge when one is configured (MLSD_LLM_DETECT).

    The judge sees the offline suggestion and returns a typed list of signal ids (structured
    output, never parsed prose). Injection is stripped before the judge sees the message; if
    the judge fails, the offline detection stands.
    """

    def __init__(self, detector: SignalDetector, judge: SignalJudge):
        self.detector, self.judge, self.specs = detector, judge, detector.specs

    def detect(self, text: str, phase: str | None = None, context: tuple[str, ...] | list[str] = ()) -> Detection:
        offline = self.detector.detect(text, phase, context)
        clean = strip_injection(text)
        if not clean or not offline.signals:
            return offline
        try:
            judged = set(self.judge.judge(clean, phase, offline.signals))
        except MlsdError:
            return offline
        # The judge may only confirm or remove what the offline detector found, each with the
        # candidate's own sentence: an LLM cannot add credit (a judge returning every id adds nothing).
        ordered = [s for s in offline.signals if s in judged]
        return Detection(ordered, {s: offline.quotes[s] for s in ordered}, offline.relevance,
                         {s: offline.sentences_for(s) for s in ordered})
