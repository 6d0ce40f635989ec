"""Retrieval benchmark: ingest time, hit@5 / MRR of hybrid vs BM25 vs dense, a dense_weight sweep, latency, RSS.

Run from the project root:  .venv/bin/python bench/retrieval.py
Queries come from bench/data/retrieval.jsonl: {"query", "expect": {"case"?, "phase"?}};
a hit matches when every expected key equals the hit's field. Everything runs in a
temporary data dir, fully offline; nothing in the repository is written.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mlsd_bot.config import PROJECT_ROOT, load_settings
from mlsd_bot.retrieval import DENSE_WEIGHT, Retriever
from mlsd_bot.store import ingest, open_index

DATA = Path(__file__).parent / "data" / "retrieval.jsonl"
K = 5
SWEEP = (0.5, 0.6, 0.7, 0.8)
LATENCY_REPEATS = 5


def load_queries(path: Path) -> list[dict]:
    """The benchmark queries, one JSON object per non-blank line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def timed_ingests(settings) -> tuple[float, float, object]:
    """Seconds for a cold ingest (includes loading the model) and a warm one (nothing changed)."""
    t0 = time.perf_counter()
    cold = ingest(settings, progress=None)
    t1 = time.perf_counter()
    warm = ingest(settings, progress=None)
    t2 = time.perf_counter()
    if warm.added or warm.removed:
        sys.exit(f"warm ingest was not a no-op: {warm.summary()}")
    return t1 - t0, t2 - t1, cold


def first_match(hits, expect: dict) -> int | None:
    """1-based rank of the first hit whose fields equal every expected key, or None."""
    for rank, hit in enumerate(hits, 1):
        if all(getattr(hit.chunk, key) == value for key, value in expect.items()):
            return rank
    return None


def score(retriever: Retriever, queries: list[dict], weight: float) -> dict:
    """hit@K and MRR overall and per kind of expectation (case / phase / case+phase)."""
    ranks = [first_match(retriever.search(q["query"], k=K, dense_weight=weight), q["expect"]) for q in queries]
    groups: dict[str, list[int | None]] = {"all": ranks}
    for q, rank in zip(queries, ranks):
        groups.setdefault("+".join(sorted(q["expect"])), []).append(rank)
    out: dict = {g: sum(r is not None for r in rs) / len(rs) for g, rs in groups.items()}
    out["mrr"] = sum(1 / r for r in ranks if r) / len(ranks)
    out["misses"] = [q["query"] for q, r in zip(queries, ranks) if r is None]
    return out


def bm25_is_plain(retriever: Retriever, queries: list[dict]) -> bool:
    """dense_weight=0.0 must rank exactly as raw BM25 does (same ids, same order)."""
    for q in queries:
        raw = retriever.bm25.scores(q["query"])
        expected = [i for i, _ in sorted(raw.items(), key=lambda kv: (-kv[1], retriever.chunks[kv[0]].id))][:K]
        got = [h.chunk.id for h in retriever.search(q["query"], k=K, dense_weight=0.0)]
        if got != [retriever.chunks[i].id for i in expected]:
            return False
    return True


def latencies_ms(retriever: Retriever, queries: list[dict], weight: float, first_pad: int) -> tuple[float, float]:
    """p50 and p99 of in-process search latency over every query, LATENCY_REPEATS times.

    Each repeat pads the query with a number of trailing spaces not used before (ignored by the
    tokenizer and by BM25) so that no call is answered from a query-embedding cache: in an
    interview every candidate message is new text.
    """
    samples = []
    for rep in range(first_pad, first_pad + LATENCY_REPEATS):
        for q in queries:
            t0 = time.perf_counter()
            retriever.search(q["query"] + " " * rep, k=K, dense_weight=weight)
            samples.append((time.perf_counter() - t0) * 1000)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def print_table(rows: list[tuple[str, float, dict]], kinds: list[str]) -> None:
    """One line per method: hit@K overall, MRR, and hit@K per kind of expectation."""
    head = f"{'method':<22}{'dense_w':>8}{'hit@5':>8}{'MRR':>7}" + "".join(f"{'hit@5 ' + k:>19}" for k in kinds)
    print(head)
    print("-" * len(head))
    for name, weight, r in rows:
        print(f"{name:<22}{weight:>8.2f}{r['all']:>8.3f}{r['mrr']:>7.3f}" + "".join(f"{r[k]:>19.3f}" for k in kinds))


def main() -> None:
    """Ingest into a temp dir, score every method, print the tables."""
    if not DATA.is_file():
        sys.exit(f"{DATA}: no such file")
    queries = load_queries(DATA)
    with tempfile.TemporaryDirectory(prefix="mlsd-bench-") as tmp:
        settings = load_settings({"MLSD_DATA_DIR": tmp, "MLSD_KNOWLEDGE_DIR": str(PROJECT_ROOT / "knowledge"),
                                  "MLSD_VOICE": "offline"})
        cold_s, warm_s, report = timed_ingests(settings)
        retriever = Retriever(open_index(settings, build_if_missing=False))
        kinds = sorted({"+".join(sorted(q["expect"])) for q in queries}, key=lambda k: (k.count("+"), k))

        print(f"knowledge: {len(report.added)} notes, {report.chunks} chunks; {len(queries)} queries from {DATA.name}")
        print(f"ingest: cold {cold_s:.1f} s (includes model load), warm {warm_s:.2f} s (nothing changed)")
        print(f"BM25 baseline check: dense_weight=0.0 ranks exactly as plain BM25: {bm25_is_plain(retriever, queries)}\n")

        methods = [("hybrid (default)", DENSE_WEIGHT), ("BM25 baseline", 0.0), ("dense only", 1.0)]
        methods += [("hybrid sweep", w) for w in SWEEP]
        rows = [(name, w, score(retriever, queries, w)) for name, w in methods]
        print_table(rows, kinds)

        print(f"\nmisses of hybrid (dense_w={DENSE_WEIGHT}): " + ("; ".join(rows[0][2]["misses"]) or "none"))
        print("misses of BM25: " + ("; ".join(rows[1][2]["misses"]) or "none"))

        print(f"\nquery latency in-process (query embedding included), {len(queries)} queries x {LATENCY_REPEATS}:")
        for i, (name, w) in enumerate(methods[:3]):
            p50, p99 = latencies_ms(retriever, queries, w, first_pad=1 + i * LATENCY_REPEATS)
            print(f"  {name:<18} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(f"\npeak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
