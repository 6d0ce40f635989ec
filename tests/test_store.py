"""The vector store: incremental ingest, a malformed note leaves the old index usable, the embedder, persistence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.embeddings import GRADING, KNOWLEDGE, MiniLM, MiniLMEmbeddingFunction, get_encoder
from mlsd_bot.errors import IndexMissingError, NoteError
from mlsd_bot.knowledge import chunk_note, load_notes
from mlsd_bot.retrieval import Retriever
from mlsd_bot.store import COLLECTION, KnowledgeIndex, ingest, open_client, open_index

ALL_SOURCES = ["case_studies/toy_blur.md", "case_studies/toy_feed.md", "framework/clarify.md", "framework/monitoring.md"]


@pytest.fixture
def settings(settings_for):
    """Settings over the tiny fixture knowledge folder and an empty data dir."""
    return settings_for()


@pytest.fixture
def embedded(monkeypatch) -> list[str]:
    """Every text the encoder embeds from now on (ingest embeds documents, search embeds queries)."""
    seen: list[str] = []
    original = MiniLM.encode

    def spy(self, texts):
        seen.extend(texts)
        return original(self, texts)

    monkeypatch.setattr(MiniLM, "encode", spy)
    return seen


def _index(settings) -> KnowledgeIndex:
    """A fresh handle on the collection (as a new command would open it)."""
    return KnowledgeIndex(open_client(settings))


def _stored(settings) -> list:
    """The chunks the index holds, sorted by id."""
    chunks, _vectors = _index(settings).all_chunks()
    return sorted(chunks, key=lambda c: c.id)


def _expected_chunks(settings):
    """What the index should hold: the chunks of every note on disk."""
    return sorted((c for n in load_notes(settings.knowledge_dir) for c in chunk_note(n)), key=lambda c: c.id)


# --- ingest -----------------------------------------------------------------------

def test_ingest_builds_the_index_with_every_chunk_and_its_metadata(settings) -> None:
    report = ingest(settings, progress=None)
    assert sorted(report.added) == ALL_SOURCES
    assert report.unchanged == [] and report.removed == []
    expected = _expected_chunks(settings)
    assert report.chunks == len(expected) == _index(settings).count()
    assert _stored(settings) == expected  # ids, source, case (None for framework), phase, heading, text, digest
    chunks, vectors = _index(settings).all_chunks()
    assert vectors.shape == (len(chunks), 384)  # each row is the embedding of that chunk's text
    assert np.allclose(vectors, get_encoder(KNOWLEDGE).encode([c.text for c in chunks]), atol=1e-4)
    assert "4 note(s) embedded" in report.summary()


def test_an_index_embedded_by_another_model_build_is_embedded_again(settings) -> None:
    """An index from an older release (another build of the model) is not mixed with today's query vectors."""
    ingest(settings, progress=None, encoder=MiniLM(model=GRADING))
    again = ingest(settings, progress=None)
    assert sorted(again.added) == ALL_SOURCES and again.unchanged == []
    chunks, vectors = _index(settings).all_chunks()
    assert np.allclose(vectors, get_encoder(KNOWLEDGE).encode([c.text for c in chunks]), atol=1e-4)
    assert ingest(settings, progress=None).added == []


def test_reingest_with_nothing_changed_embeds_nothing(settings, embedded) -> None:
    first = ingest(settings, progress=None)
    assert len(set(embedded)) == first.chunks  # (asked twice: one bulk call, then the per-note writes reuse it)
    embedded.clear()
    again = ingest(settings, progress=None)
    assert again.added == [] and again.removed == []
    assert sorted(again.unchanged) == ALL_SOURCES
    assert again.chunks == first.chunks
    assert embedded == []


def test_editing_one_note_reembeds_only_that_note(settings, embedded) -> None:
    ingest(settings, progress=None)
    before = {c.id: c for c in _stored(settings)}
    note = settings.knowledge_dir / "case_studies" / "toy_feed.md"
    note.write_text(note.read_text().replace("two-tower candidate generator", "zebra-striped candidate generator"))
    embedded.clear()

    report = ingest(settings, progress=None)
    assert report.added == ["case_studies/toy_feed.md"]
    assert sorted(report.unchanged) == [s for s in ALL_SOURCES if s != "case_studies/toy_feed.md"]
    new_chunks = [c for c in _expected_chunks(settings) if c.source == "case_studies/toy_feed.md"]
    assert sorted(set(embedded)) == sorted(c.text for c in new_chunks)
    after = {c.id: c for c in _stored(settings)}
    assert {i: c for i, c in after.items() if c.source != "case_studies/toy_feed.md"} == \
           {i: c for i, c in before.items() if c.source != "case_studies/toy_feed.md"}
    assert not any("two-tower" in c.text for c in after.values())
    hit = Retriever(_index(settings)).search("zebra-striped candidate generator", k=1)[0]
    assert (hit.chunk.case, hit.chunk.phase) == ("toy_feed", "model")


def test_deleting_a_note_removes_its_chunks(settings) -> None:
    first = ingest(settings, progress=None)
    gone = [c for c in _expected_chunks(settings) if c.source == "framework/monitoring.md"]
    (settings.knowledge_dir / "framework" / "monitoring.md").unlink()

    report = ingest(settings, progress=None)
    assert report.removed == ["framework/monitoring.md"] and report.added == []
    assert report.chunks == first.chunks - len(gone) == _index(settings).count()
    assert all(c.source != "framework/monitoring.md" for c in _stored(settings))
    hits = Retriever(_index(settings)).search("population stability index", k=10)
    assert all(h.chunk.source != "framework/monitoring.md" for h in hits)


def test_malformed_note_stops_ingest_and_leaves_the_previous_index_usable(settings) -> None:
    ingest(settings, progress=None)
    before_chunks = _stored(settings)
    query = "licence plates missed by the detector"
    before_hits = Retriever(_index(settings)).search(query)
    assert before_hits

    # An edit breaks one note while another note also changed: nothing may be applied.
    (settings.knowledge_dir / "case_studies" / "toy_blur.md").write_text("---\nid: [broken\n---\n## Clarify\nx\n")
    clarify = settings.knowledge_dir / "framework" / "clarify.md"
    clarify.write_text(clarify.read_text() + "\nAlso ask about label delay.\n")
    with pytest.raises(NoteError) as err:
        ingest(settings, progress=None)
    assert err.value.path == "case_studies/toy_blur.md"

    index = _index(settings)
    assert index.count() == len(before_chunks)
    assert _stored(settings) == before_chunks
    after_hits = Retriever(index).search(query)
    assert [h.chunk.id for h in after_hits] == [h.chunk.id for h in before_hits]


def test_open_index_builds_a_missing_index(settings) -> None:
    assert not settings.index_dir.exists()
    index = open_index(settings)
    assert index.count() == len(_expected_chunks(settings))


def test_open_index_picks_up_an_edited_note_without_a_manual_ingest(settings) -> None:
    ingest(settings, progress=None)
    note = settings.knowledge_dir / "case_studies" / "toy_feed.md"
    note.write_text(note.read_text().replace("two-tower candidate generator", "zebra-striped candidate generator"))
    hit = Retriever(open_index(settings)).search("zebra-striped candidate generator", k=1)[0]
    assert "zebra-striped" in hit.chunk.text and hit.chunk.case == "toy_feed"


def test_open_index_serves_the_previous_index_when_a_note_breaks(settings, capsys) -> None:
    ingest(settings, progress=None)
    before = _stored(settings)
    (settings.knowledge_dir / "case_studies" / "toy_blur.md").write_text("---\nid: [broken\n---\n")
    index = open_index(settings)
    assert index.count() == len(before) and _stored(settings) == before
    warning = capsys.readouterr().err.strip()
    assert warning.count("\n") == 0 and "case_studies/toy_blur.md" in warning and "previous index" in warning


def test_open_index_with_no_index_builds_the_valid_notes_and_warns_about_the_broken_one(settings, capsys) -> None:
    (settings.knowledge_dir / "case_studies" / "toy_blur.md").write_text("no front matter\n")
    index = open_index(settings)
    assert {c.source for c in _stored(settings)} == set(ALL_SOURCES) - {"case_studies/toy_blur.md"}
    assert index.collection.count() == len(_stored(settings))
    warning = capsys.readouterr().err.strip()
    assert warning.count("\n") == 0 and "case_studies/toy_blur.md" in warning and "out of service" in warning


def test_open_index_with_no_index_and_every_note_broken_is_an_error(settings) -> None:
    for source in ALL_SOURCES:
        (settings.knowledge_dir / source).write_text("no front matter\n")
    with pytest.raises(IndexMissingError):
        open_index(settings)


# --- the embedding function -------------------------------------------------------

def _cos(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity (the vectors are already unit-norm, but do not rely on it here)."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


PARAPHRASES = [
    ("How many people use the app every day?", "What is the number of daily active users?",
     "We retrain the ranking model every week."),
    ("Suggest friends a member may know.", "Recommend people you might want to connect with.",
     "Blur licence plates in street photos."),
    ("The prediction must return in under 100 milliseconds.", "Latency budget: responses within a tenth of a second.",
     "Annotators label harmful posts by hand."),
]


@pytest.mark.parametrize("anchor,paraphrase,unrelated", PARAPHRASES)
def test_paraphrases_score_closer_than_unrelated_sentences(anchor: str, paraphrase: str, unrelated: str) -> None:
    a, p, u = get_encoder(KNOWLEDGE).encode([anchor, paraphrase, unrelated])
    assert _cos(a, p) > _cos(a, u) + 0.1
    assert _cos(a, p) > _cos(p, u) + 0.1


def test_vectors_are_unit_norm_384_float32() -> None:
    vectors = get_encoder(KNOWLEDGE).encode(["short", "a much longer sentence about feature stores and online serving " * 5])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert get_encoder(KNOWLEDGE).encode([]).shape == (0, 384)


def test_batch_padding_gives_the_same_vector_as_encoding_alone() -> None:
    encoder = get_encoder(KNOWLEDGE)
    texts = [f"query number {i} about {'drift ' * (i % 7)}monitoring" for i in range(40)]  # crosses BATCH=32
    texts[5] = "PSI"
    texts[6] = "a long paragraph on two-tower retrieval, hard negatives and approximate nearest neighbours " * 6
    together = encoder.encode(texts)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    assert np.max(np.abs(together - alone)) < 1e-4


def test_chroma_adapter_returns_the_encoder_vectors() -> None:
    texts = ["feature store", "A/B test"]
    from_chroma = np.array(MiniLMEmbeddingFunction()(texts))
    assert np.allclose(from_chroma, get_encoder(KNOWLEDGE).encode(texts), atol=1e-6)


# --- persistence ------------------------------------------------------------------

_REOPEN = """
import json, sys
import chromadb
from chromadb.config import Settings
import mlsd_bot.embeddings  # registers the embedding function by name
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = client.get_collection(sys.argv[2])  # no embedding function given: rebuilt from the stored config
res = col.query(query_texts=[sys.argv[3]], n_results=3, include=["distances"])
print(json.dumps({"count": col.count(), "ef": type(col.configuration["embedding_function"]).__name__,
                  "ids": res["ids"][0], "distances": res["distances"][0]}))
"""


def test_persisted_collection_reopens_in_a_new_client(settings, subprocess_env) -> None:
    ingest(settings, progress=None)
    query = "population stability index between training and serving"
    # Through LangChain's vector store and our Embeddings adapter: the same neighbours and
    # distances as a bare Chroma client gets with the embedding function stored in the collection.
    found = _index(settings).store.similarity_search_with_score(query, k=3)
    here = {"ids": [[d.id for d, _ in found]], "distances": [[score for _, score in found]]}

    proc = subprocess.run([sys.executable, "-c", _REOPEN, str(settings.index_dir), COLLECTION, query],
                          env=subprocess_env(), capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    there = json.loads(proc.stdout)
    assert there["count"] == len(_expected_chunks(settings))
    assert there["ef"] == "MiniLMEmbeddingFunction"
    assert there["ids"] == here["ids"][0]
    assert np.allclose(there["distances"], here["distances"][0], atol=1e-4)


def test_index_lives_under_the_data_dir(settings, tmp_path: Path) -> None:
    ingest(settings, progress=None)
    assert settings.index_dir == tmp_path / "data" / "chroma"
    assert any(settings.index_dir.iterdir())


# --- the offline guard these tests rely on ------------------------------------------

def _refused(connect) -> bool:
    """True when `connect()` is stopped by the offline guard (not by the network)."""
    try:
        connect()
    except RuntimeError as e:
        return "blocked outbound connection" in str(e)
    return False


def test_offline_guard_blocks_outside_addresses_and_allows_loopback(_child_guard, subprocess_env) -> None:
    import conftest  # the module pytest loaded: the guard records attempts there
    import socket

    outside = ("203.0.113.7", 80)  # TEST-NET-3: never routed, and never tried - the guard stops it first
    with socket.socket() as s:
        assert _refused(lambda: s.connect(outside))
        assert _refused(lambda: s.connect_ex(outside))
    assert _refused(lambda: socket.create_connection(outside))
    assert _refused(lambda: socket.create_connection(("example.com", 443)))
    with socket.socket(socket.AF_INET6) as s6:
        assert _refused(lambda: s6.connect(("2001:db8::1", 80, 0, 0)))
    with socket.create_server(("127.0.0.1", 0)) as server:
        socket.create_connection(server.getsockname()).close()  # loopback still works

    child = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('203.0.113.7', 80))"],
                           env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert child.returncode != 0 and "blocked outbound connection" in child.stderr
    log = _child_guard[1]
    assert "203.0.113.7" in log.read_text()
    # These attempts were made on purpose: clear them so the per-test check stays green.
    assert len(conftest.BLOCKED) == 5
    conftest.BLOCKED.clear()
    log.unlink()
