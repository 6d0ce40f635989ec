"""BM25 and the hybrid retriever on small corpora of our own, with results worked out by hand.

BM25 must rank a rare exact term first and follow the Okapi formula; the hybrid must
answer a query only BM25 can (an exact ticket code the embedding blurs) and one only
the dense side can (a paraphrase sharing no word with its answer). The hybrid is tested
at an even mix (HYBRID): the product's DENSE_WEIGHT is whatever bench/retrieval.py's
sweep picks on the tune half, which may be 1.0 (dense only).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlsd_bot.embeddings import KNOWLEDGE, get_encoder
from mlsd_bot.knowledge import Chunk
from mlsd_bot.retrieval import BM25, CANDIDATES, DENSE_WEIGHT, Retriever, terms

HYBRID = 0.5


def chunk(cid: str, text: str, case: str | None = None, phase: str = "model") -> Chunk:
    return Chunk(id=cid, source=f"{cid}.md", case=case, phase=phase, heading="", text=text, digest="d")


# --- terms ------------------------------------------------------------------------

def test_terms_lowercase_drop_stop_words_and_fold_plurals() -> None:
    assert terms("The Features of a Two-Tower model") == ["feature", "two", "tower", "model"]
    assert terms("loss class bus") == ["loss", "class", "bus"]  # -ss words and short words keep their s
    assert terms("bugs logs") == ["bug", "log"]
    assert terms("what is it") == []


# --- BM25 -------------------------------------------------------------------------

COMMON = [
    chunk("c1", "The model is trained on user data and the model is evaluated offline."),
    chunk("c2", "Train the model on fresh data every day and evaluate the model."),
    chunk("c3", "A model trained on data from the last month, evaluated on the last week."),
    chunk("rare", "Compute the PSI of every input feature daily; model data drift shows up there first."),
]


def test_a_rare_exact_term_ranks_its_chunk_first() -> None:
    bm25 = BM25(COMMON)
    scores = bm25.scores("PSI model data")
    assert max(scores, key=scores.get) == 3
    assert set(scores) == {0, 1, 2, 3}  # every chunk shares the common words...
    assert scores[3] > 2 * max(scores[i] for i in (0, 1, 2))  # ...but the rare term outweighs them


def test_bm25_matches_the_okapi_formula_by_hand() -> None:
    docs = [chunk("x", "drift drift alert"), chunk("y", "alert dashboard"), chunk("z", "retrain weekly schedule job")]
    bm25 = BM25(docs)
    n, avg, k1, b = 3, (3 + 2 + 4) / 3, 1.2, 0.75
    idf = {"drift": math.log(1 + (n - 1 + 0.5) / 1.5), "alert": math.log(1 + (n - 2 + 0.5) / 2.5)}

    def term(t: str, tf: int, length: int) -> float:
        return idf[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))

    got = bm25.scores("drift alert")
    assert got[0] == pytest.approx(term("drift", 2, 3) + term("alert", 1, 3))
    assert got[1] == pytest.approx(term("alert", 1, 2))
    assert 2 not in got  # no query term: no score at all


def test_bm25_of_a_single_chunk() -> None:
    bm25 = BM25([chunk("only", "drift alert drift")])
    idf = math.log(1 + 0.5 / 1.5)
    assert bm25.scores("drift") == {0: pytest.approx(idf * 2 * 2.2 / (2 + 1.2))}  # length == average
    assert BM25([]).scores("drift") == {}


def test_bm25_prefers_more_occurrences_and_shorter_chunks() -> None:
    bm25 = BM25([chunk("once", "calibration matters"), chunk("twice", "calibration calibration matters"),
                 chunk("long", "calibration " + "filler words about something else entirely " * 5),
                 chunk("other", "unrelated")])
    s = bm25.scores("calibration")
    assert s[1] > s[0] > s[2]


def test_bm25_scores_only_the_allowed_chunks() -> None:
    bm25 = BM25(COMMON)
    assert set(bm25.scores("PSI model", allowed=[0, 1])) == {0, 1}
    assert bm25.scores("PSI", allowed=[0, 1]) == {}
    assert bm25.scores("zzz unknown words") == {}


# --- the hybrid -------------------------------------------------------------------

CORPUS = [
    chunk("a", "Population stability index above 0.2 on a key feature starts a retraining job.", phase="monitoring"),
    chunk("b", "Friend recommendations: members one may know through mutual connections and shared schools.",
          case="pymk"),
    chunk("c", "Blur licence plates and faces in street-level panoramas before they are published.", case="blur"),
    chunk("d", "Quantize the ranking model to int8 and distil it into a smaller student to cut serving cost.",
          phase="serving"),
    chunk("e", "Video ranking: order candidate videos by predicted watch time for each viewer.", case="video"),
    chunk("f", "Ticket HX4471 tracks the off-by-one bug in the nightly export job."),
    chunk("g", "Video ranking experiments compare watch time between control and treatment.", case="video",
          phase="evaluation"),
    chunk("h", "Ad click prediction with logistic regression over hashed feature crosses.", case="ads"),
]


class _Index:
    """What Retriever reads from the store: the chunks and their vectors."""

    def all_chunks(self):
        return CORPUS, get_encoder(KNOWLEDGE).encode([c.text for c in CORPUS])


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    return Retriever(_Index())


def _top(retriever: Retriever, query: str, weight: float, k: int = 3, **filters) -> list[str]:
    return [h.chunk.id for h in retriever.search(query, k=k, dense_weight=weight, **filters)]


def test_a_query_only_bm25_can_answer(retriever) -> None:
    """An exact ticket code plus words that mean something else: the embedding follows the meaning."""
    query = "HX4471 movie suggestion engine"
    assert list(retriever.bm25.scores(query)) == [5]  # only the ticket chunk has a query term
    assert _top(retriever, query, 1.0)[0] == "e"  # dense alone prefers the video chunk
    assert _top(retriever, query, HYBRID)[0] == "f"  # the hybrid finds the ticket


def test_a_query_only_the_dense_side_can_answer(retriever) -> None:
    """A paraphrase sharing no word with its answer: BM25 has nothing, the hybrid still answers."""
    query = "suggest new pals to a user"
    assert retriever.bm25.scores(query) == {}
    assert _top(retriever, query, 0.0) == []
    assert _top(retriever, query, HYBRID)[0] == "b"


def test_the_extreme_weights_are_plain_bm25_and_plain_dense(retriever) -> None:
    query = "video ranking watch time"
    sparse = retriever.bm25.scores(query)
    assert _top(retriever, query, 0.0, k=8) == [CORPUS[i].id for i in sorted(sparse, key=lambda i: -sparse[i])]
    sims = get_encoder(KNOWLEDGE).encode([c.text for c in CORPUS]) @ get_encoder(KNOWLEDGE).encode([query])[0]
    assert len(CORPUS) <= CANDIDATES  # so the dense side ranks every chunk
    assert _top(retriever, query, 1.0, k=8) == [CORPUS[i].id for i in np.argsort(-sims)]


def test_fused_scores_mix_dense_and_normalised_bm25(retriever) -> None:
    query, w = "video ranking watch time", 0.6
    sparse = retriever.bm25.scores(query)
    dense = get_encoder(KNOWLEDGE).encode([c.text for c in CORPUS]) @ get_encoder(KNOWLEDGE).encode([query])[0]
    hits = retriever.search(query, k=8, dense_weight=w)
    top = max(sparse.values())
    for h in hits:
        i = CORPUS.index(h.chunk)
        assert h.score == pytest.approx(w * max(0.0, dense[i]) + (1 - w) * sparse.get(i, 0.0) / top, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_filters_k_and_empty_queries(retriever) -> None:
    assert set(_top(retriever, "watch time", DENSE_WEIGHT, k=8, case="video")) == {"e", "g"}
    assert _top(retriever, "watch time", DENSE_WEIGHT, k=8, case="video", phase="evaluation") == ["g"]
    assert _top(retriever, "watch time", DENSE_WEIGHT, k=8, case="nope") == []
    assert len(_top(retriever, "model", DENSE_WEIGHT, k=2)) == 2
    assert _top(retriever, "   ", DENSE_WEIGHT) == []
    hit = retriever.search("HX4471")[0]
    assert hit.to_json() == {"id": "f", "source": "f.md", "case": None, "phase": "model",
                             "score": round(hit.score, 4), "text": CORPUS[5].text}
    assert hit.to_json()["score"] != hit.score  # rounded to 4 places for the JSON output


def test_a_chunk_only_bm25_found_scores_its_bm25_share_alone(retriever, monkeypatch) -> None:
    """With one dense candidate, the ticket chunk comes from BM25 only: no dense part in its score."""
    import mlsd_bot.retrieval as retrieval

    monkeypatch.setattr(retrieval, "CANDIDATES", 1)
    query = "HX4471 roadside photo anonymisation"
    hits = {h.chunk.id: h.score for h in retriever.search(query, k=5, dense_weight=0.5)}
    assert hits["f"] == pytest.approx(0.5)  # (1 - 0.5) x its BM25 score / the best BM25 score (its own)
    assert hits["c"] == pytest.approx(0.5 * float(get_encoder(KNOWLEDGE).encode([CORPUS[2].text])[0]
                                                  @ get_encoder(KNOWLEDGE).encode([query])[0]), abs=1e-5)
    assert [h.chunk.id for h in retriever.search(query, k=5, dense_weight=1.0)] == ["c"]  # dense only: no BM25


def test_the_dense_side_keeps_the_nearest_chunks_of_a_large_index() -> None:
    """More chunks than CANDIDATES: the nearest must survive the cut, not the farthest."""
    filler = [chunk(f"n{i:02d}", f"Note {i} on quarterly budget planning for the finance team.") for i in range(CANDIDATES)]
    target = chunk("t", "Blur licence plates and faces in street-level panoramas before they are published.")
    many = filler + [target]

    class Many:
        def all_chunks(self):
            return many, get_encoder(KNOWLEDGE).encode([c.text for c in many])

    hits = Retriever(Many()).search("hide number plates in street photos", k=3, dense_weight=1.0)
    assert hits[0].chunk.id == "t"


def test_search_uses_the_product_weight_by_default(retriever) -> None:
    query = "HX4471 movie suggestion engine"
    assert [h.chunk.id for h in retriever.search(query)] == _top(retriever, query, DENSE_WEIGHT, k=5)
    assert 0.0 <= DENSE_WEIGHT <= 1.0


def test_equal_scores_are_ordered_by_id() -> None:
    twins = [chunk("b2", "same words here"), chunk("a1", "same words here")]

    class Twins:
        def all_chunks(self):
            return twins, get_encoder(KNOWLEDGE).encode([c.text for c in twins])

    assert [h.chunk.id for h in Retriever(Twins()).search("same words", k=2)] == ["a1", "b2"]
