"""Hybrid retrieval over the knowledge chunks: dense vectors fused with BM25.

Dense MiniLM vectors catch paraphrases ("people you might know" ~ friend
suggestions); BM25 catches rare exact terms (ticket codes, acronyms) that a small
embedding model blurs. `dense_weight` mixes them; its default DENSE_WEIGHT is the
weight bench/retrieval.py's sweep over 0..1 picks on the tune half of its queries (the
held-out half is reported beside it).

The chunks and their vectors live in Chroma; the retriever reads them once and
scores in memory. The knowledge base is a few thousand chunks at most, so an
exact dot product costs microseconds - cheaper than a Chroma round trip per
query (a network hop with MLSD_CHROMA_URL), which mattered for the interviewer's
per-turn latency (bench/interview.py).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .embeddings import KNOWLEDGE, MiniLM, get_encoder
from .knowledge import Chunk
from .store import KnowledgeIndex

DENSE_WEIGHT = 0.9  # best hit@5, then MRR, on the tune half of bench/data/retrieval.jsonl (bench/retrieval.py)
CANDIDATES = 40
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and are as at be by can do for from how i in is it its of on or the to we what when which with would you your this that".split())


def terms(text: str) -> list[str]:
    """Lower-cased word tokens, stop words dropped, a crude plural fold."""
    out = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP:
            continue
        out.append(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


class BM25:
    """Okapi BM25 (k1=1.2, b=0.75) over a fixed list of chunks."""

    def __init__(self, chunks: list[Chunk], k1: float = 1.2, b: float = 0.75):
        self.chunks, self.k1, self.b = chunks, k1, b
        self.docs = [Counter(terms(c.text)) for c in chunks]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(len(self.docs), 1)
        df = Counter(t for d in self.docs for t in d)
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: str, allowed: list[int] | None = None) -> dict[int, float]:
        q = [t for t in set(terms(query)) if t in self.idf]
        out = {}
        for i in allowed if allowed is not None else range(len(self.docs)):
            d, norm = self.docs[i], self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg)
            s = sum(self.idf[t] * d[t] * (self.k1 + 1) / (d[t] + norm) for t in q if t in d)
            if s > 0:
                out[i] = s
        return out


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float

    def to_json(self) -> dict:
        c = self.chunk
        return {"id": c.id, "source": c.source, "case": c.case, "phase": c.phase,
                "score": round(self.score, 4), "text": c.text}


class Retriever:
    """Search the index; holds the chunk list for BM25, loaded once."""

    def __init__(self, index: KnowledgeIndex, encoder: MiniLM | None = None):
        self.chunks, self.vectors = index.all_chunks()
        self.encoder = encoder or get_encoder(KNOWLEDGE)
        self.bm25 = BM25(self.chunks)
        self._embed = functools.lru_cache(maxsize=1024)(lambda q: self.encoder.encode([q])[0])

    def _allowed(self, case: str | None, phase: str | None) -> list[int]:
        return [i for i, c in enumerate(self.chunks)
                if (case is None or c.case == case) and (phase is None or c.phase == phase)]

    def _dense(self, query: str, allowed: list[int], n: int) -> dict[int, float]:
        """Cosine similarity (vectors are unit length) of the n nearest allowed chunks, floored at 0."""
        sims = self.vectors[allowed] @ self._embed(query)
        top = np.argsort(-sims)[:n]
        return {allowed[j]: max(0.0, float(sims[j])) for j in top}

    def search(self, query: str, case: str | None = None, phase: str | None = None, k: int = 5,
               dense_weight: float = DENSE_WEIGHT) -> list[Hit]:
        allowed = self._allowed(case, phase)
        if not allowed or not query.strip():
            return []
        dense = self._dense(query, allowed, CANDIDATES) if dense_weight > 0 else {}
        sparse = self.bm25.scores(query, allowed) if dense_weight < 1 else {}
        top = max(sparse.values(), default=0.0) or 1.0
        fused = {i: dense_weight * dense.get(i, 0.0) + (1 - dense_weight) * sparse.get(i, 0.0) / top
                 for i in set(dense) | set(sparse)}
        best = sorted(fused.items(), key=lambda kv: (-kv[1], self.chunks[kv[0]].id))[:k]
        return [Hit(self.chunks[i], s) for i, s in best]


_TRADE_OFF = re.compile(r"\b(but|however|instead|pitfall|mistake|risk|fails?|costs?|trade-?off|avoid|because|unless)\b", re.I)
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+\s*[-*\d.]*\s*")


def best_sentence(hit: Hit, query: str, limit: int = 260) -> str:
    """The one sentence of a chunk that best answers `query`: a fact, not the whole section."""
    body = hit.chunk.text.split("\n", 1)[-1]
    q = set(terms(query))
    cands = [s.strip(" -*") for s in _SPLIT.split(body) if len(s.split()) >= 6]
    if not cands:
        return _clip(body, limit)
    # Prefer whole sentences that carry a number or a trade-off: that is what makes advice concrete.
    score = lambda s: (len(q & set(terms(s))) + 0.5 * bool(re.search(r"\d", s)) + 0.5 * s[:1].isupper()
                       + 0.7 * bool(_TRADE_OFF.search(s)))
    return _clip(max(cands, key=score).replace("**", ""), limit)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
