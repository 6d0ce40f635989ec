"""Retrieval benchmark: ingest times, hit@5 / MRR of hybrid vs BM25 vs dense on the tune and held-out halves,
a dense_weight sweep over 0..1 chosen on the tune half only, latency, RSS.

Run from the project root:  .venv/bin/python bench/retrieval.py
Queries come from bench/data/retrieval.jsonl: {"query", "expect": {"case"?, "phase"?}};
a hit matches when every expected key equals the hit's field. Queries are split into
halves by their expected case (bench/split.yaml, bench/halves.py). Everything runs in
temporary data dirs, fully offline; nothing in the repository is written.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from halves import HALVES, by_half

from mlsd_bot.config import PROJECT_ROOT, load_settings
from mlsd_bot.embeddings import KNOWLEDGE, KnownVectors, MiniLM
from mlsd_bot.retrieval import DENSE_WEIGHT, Retriever
from mlsd_bot.store import ingest, open_index

DATA = Path(__file__).parent / "data" / "retrieval.jsonl"
K = 5
SWEEP = tuple(round(0.1 * i, 1) for i in range(11))  # 0.0 (BM25 only) .. 1.0 (dense only)
LATENCY_REPEATS = 5


def load_queries(path: Path) -> list[dict]:
    """The benchmark queries, one JSON object per non-blank line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _settings(data_dir: str):
    return load_settings({"MLSD_DATA_DIR": data_dir, "MLSD_KNOWLEDGE_DIR": str(PROJECT_ROOT / "knowledge"),
                          "MLSD_VOICE": "offline"})


def timed_ingest(settings, encoder: MiniLM):
    """(seconds, report) of one ingest with this encoder."""
    t0 = time.perf_counter()
    report = ingest(settings, progress=None, encoder=encoder)
    return time.perf_counter() - t0, report


def timed_ingests(cold_dir: str, shipped_dir: str) -> dict:
    """Cold (every chunk through the model, model load included), from the shipped vectors
    (a fresh clone), and warm (nothing changed) ingests of the whole knowledge base."""
    out = {}
    out["cold_s"], out["cold"] = timed_ingest(_settings(cold_dir), MiniLM(model=KNOWLEDGE))
    t0 = time.perf_counter()
    shipped = MiniLM(KnownVectors.load(KNOWLEDGE), KNOWLEDGE)
    out["load_vectors_s"] = time.perf_counter() - t0
    out["shipped_s"], out["shipped"] = timed_ingest(_settings(shipped_dir), shipped)
    out["warm_s"], warm = timed_ingest(_settings(shipped_dir), shipped)
    if warm.added or warm.removed:
        sys.exit(f"warm ingest was not a no-op: {warm.summary()}")
    return out


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


def same_top_k(a: Retriever, b: Retriever, queries: list[dict]) -> int:
    """How many queries get the same top-K ids from both retrievers."""
    return sum([h.chunk.id for h in a.search(q["query"], k=K)] == [h.chunk.id for h in b.search(q["query"], k=K)]
               for q in queries)


def print_methods(retriever: Retriever, halves: dict[str, list[dict]], queries: list[dict]) -> None:
    """hit@K and MRR of each method on the tune half, the held-out half and all queries."""
    methods = [("mlsd-bot hybrid", DENSE_WEIGHT), ("BM25 baseline", 0.0), ("dense only", 1.0)]
    head = f"{'method':<18}{'dense_w':>8}" + "".join(f"{h + ' hit@5':>15}{'MRR':>6}" for h in (*HALVES, "all"))
    print(head + "\n" + "-" * len(head))
    for name, w in methods:
        cells = [score(retriever, rows, w) for rows in (halves["tune"], halves["heldout"], queries)]
        print(f"{name:<18}{w:>8.2f}" + "".join(f"{r['all']:>15.3f}{r['mrr']:>6.3f}" for r in cells))
    kinds = sorted({"+".join(sorted(q["expect"])) for q in queries}, key=lambda k: (k.count("+"), k))
    r = score(retriever, queries, DENSE_WEIGHT)
    print("hybrid hit@5 by what a query expects (all queries): "
          + ", ".join(f"{k} {r[k]:.3f} (n={sum('+'.join(sorted(q['expect'])) == k for q in queries)})" for k in kinds))
    print("misses of the hybrid: " + ("; ".join(r["misses"]) or "none"))


def sweep(retriever: Retriever, halves: dict[str, list[dict]]) -> float:
    """Every dense weight on both halves; the weight is chosen on the tune half only."""
    print(f"\n{'dense_w':>8}{'tune hit@5':>12}{'MRR':>7}{'held-out hit@5':>16}{'MRR':>7}")
    rows = []
    for w in SWEEP:
        t, h = score(retriever, halves["tune"], w), score(retriever, halves["heldout"], w)
        rows.append((w, t, h))
        print(f"{w:>8.1f}{t['all']:>12.3f}{t['mrr']:>7.3f}{h['all']:>16.3f}{h['mrr']:>7.3f}")
    best = max(rows, key=lambda r: (round(r[1]["all"], 6), round(r[1]["mrr"], 6)))[0]
    note = "" if best == DENSE_WEIGHT else f"  <- differs from DENSE_WEIGHT={DENSE_WEIGHT}: update retrieval.py"
    print(f"chosen on the tune half (best hit@5, then MRR): dense_weight={best}{note}")
    return best


def main() -> None:
    """Ingest into temp dirs, score every method per half, sweep, time queries."""
    if not DATA.is_file():
        sys.exit(f"{DATA}: no such file")
    queries = load_queries(DATA)
    halves = by_half(queries, lambda q: q["expect"].get("case"), lambda q: q["query"])
    with tempfile.TemporaryDirectory(prefix="mlsd-bench-") as cold_dir, \
            tempfile.TemporaryDirectory(prefix="mlsd-bench-") as shipped_dir:
        t = timed_ingests(cold_dir, shipped_dir)
        retriever = Retriever(open_index(_settings(shipped_dir), build_if_missing=False))
        fresh = Retriever(open_index(_settings(cold_dir), build_if_missing=False))

        print(f"knowledge: {len(t['cold'].added)} notes, {t['cold'].chunks} chunks; {len(queries)} queries from "
              f"{DATA.name}: {len(halves['tune'])} tune, {len(halves['heldout'])} held-out (split by case)")
        print(f"ingest: cold {t['cold_s']:.1f} s ({t['cold'].model_runs} chunks through the model, model load "
              f"included); from the shipped vectors {t['shipped_s']:.1f} s ({t['shipped'].model_runs} through the "
              f"model, + {t['load_vectors_s']:.2f} s to load them); warm {t['warm_s']:.2f} s (nothing changed)")
        print(f"shipped (float16) vs freshly computed vectors: same top-{K} for "
              f"{same_top_k(retriever, fresh, queries)}/{len(queries)} queries")
        print(f"BM25 baseline check: dense_weight=0.0 ranks exactly as plain BM25: {bm25_is_plain(retriever, queries)}\n")

        print_methods(retriever, halves, queries)
        sweep(retriever, halves)

        print(f"\nquery latency in-process (query embedding included), {len(queries)} queries x {LATENCY_REPEATS}:")
        for i, (name, w) in enumerate([("hybrid", DENSE_WEIGHT), ("BM25 baseline", 0.0), ("dense only", 1.0)]):
            p50, p99 = latencies_ms(retriever, queries, w, first_pad=1 + i * LATENCY_REPEATS)
            print(f"  {name:<18} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(f"\npeak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
