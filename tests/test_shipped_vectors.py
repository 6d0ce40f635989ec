"""The shipped vectors (mlsd_bot/data/embedding/vectors.npz): current, correct, and used.

A fresh clone builds its index (and its detector, mistake spotter and case facts) from
this file instead of running the model, so it must hold exactly the texts a fresh
start embeds today: whoever edits a note or the product data refreshes it with the
command below.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mlsd_bot import embeddings
from mlsd_bot.embeddings import MODEL_CHECKSUM, VECTORS_PATH, KnownVectors, MiniLM, get_encoder, text_key
from mlsd_bot.knowledge import chunk_note, load_notes
from mlsd_bot.config import load_settings
from mlsd_bot.store import ingest, refresh_shipped_vectors, startup_vectors

from conftest import REAL_KNOWLEDGE

REFRESH = "make vectors   (or: .venv/bin/mlsd-bot ingest --refresh-vectors), then commit mlsd_bot/data/embedding/vectors.npz"


def startup_texts(knowledge_dir) -> list[str]:
    """What a fresh start over these notes embeds (answered from the shipped file where it can)."""
    settings = load_settings({"MLSD_DATA_DIR": "/nonexistent-unused", "MLSD_KNOWLEDGE_DIR": str(knowledge_dir),
                              "MLSD_VOICE": "offline"})
    return list(startup_vectors(settings, MiniLM(KnownVectors.load())))


@pytest.fixture(scope="module")
def needed() -> dict[str, str]:
    return {text_key(t): t for t in startup_texts(REAL_KNOWLEDGE)}


@pytest.fixture(scope="module")
def shipped() -> dict:
    with np.load(VECTORS_PATH, allow_pickle=False) as f:
        return {"model": str(f["model"]), "keys": [str(k) for k in f["keys"]], "vectors": f["vectors"]}


def test_shipped_vectors_match_what_a_fresh_start_embeds(shipped, needed) -> None:
    notes = load_notes(REAL_KNOWLEDGE)
    assert shipped["model"] == MODEL_CHECKSUM, f"vectors.npz was made with another model/tokenizer: run {REFRESH}"
    have = set(shipped["keys"])
    stale_sources = sorted({c.source for n in notes for c in chunk_note(n) if text_key(c.text) not in have})
    missing = [t for k, t in needed.items() if k not in have]
    extra = len(have - set(needed))
    assert not missing and not extra, (
        f"vectors.npz is stale: {len(missing)} text(s) missing (notes: {', '.join(stale_sources) or 'none'}; "
        f"first: {missing[:1]!r}), {extra} no longer used. Run: {REFRESH}")


def test_shipped_vectors_are_what_the_model_computes(shipped, needed) -> None:
    """A sample re-encoded with the model (the shipped table bypassed) points the same way."""
    texts = needed
    rows = [i for i, k in enumerate(shipped["keys"]) if k in texts]
    sample = [rows[i] for i in np.random.default_rng(7).choice(len(rows), size=12, replace=False)]
    fresh = get_encoder().run_model([texts[shipped["keys"][i]] for i in sample])
    stored = shipped["vectors"][sample].astype(np.float32)
    cos = (fresh * stored).sum(axis=1) / np.linalg.norm(stored, axis=1)
    assert cos.min() > 0.999, f"shipped vectors disagree with the model (cos {cos.min():.4f}): run {REFRESH}"


def test_a_fresh_index_of_the_real_notes_runs_no_text_through_the_model(settings_for) -> None:
    encoder = MiniLM(KnownVectors.load())
    report = ingest(settings_for(knowledge_dir=REAL_KNOWLEDGE), progress=None, encoder=encoder)
    assert report.chunks > 300 and len(report.added) == len(load_notes(REAL_KNOWLEDGE))
    assert report.model_runs == 0 and encoder._session is None  # the model was never even loaded


def test_known_texts_come_from_the_table_and_unknown_ones_from_the_model(tmp_path) -> None:
    texts = ["feature store freshness", "PSI above 0.2 triggers retraining", "two-tower retrieval"]
    vectors = get_encoder().run_model(texts)
    path = tmp_path / "v.npz"
    assert KnownVectors.save(texts[:2], vectors[:2], path) == 2
    encoder = MiniLM(KnownVectors.load(path))
    got = encoder.encode(texts)
    assert encoder.model_runs == 1  # only the third text ran through the model
    assert np.allclose(got, vectors, atol=2e-3)  # float16 storage
    assert not np.array_equal(got[0], vectors[0])  # ... so the first really came from the file


def test_vectors_from_another_model_are_ignored(tmp_path) -> None:
    path = tmp_path / "v.npz"
    np.savez_compressed(path, model=np.array("0" * 16), keys=np.array([text_key("x")]),
                        vectors=np.ones((1, 384), np.float16))
    assert len(KnownVectors.load(path)) == 0
    assert len(KnownVectors.load(tmp_path / "absent.npz")) == 0


def test_refresh_keeps_unchanged_rows_encodes_new_texts_and_drops_gone_ones(settings_for, kb_dir, tmp_path) -> None:
    path = tmp_path / "vectors.npz"
    shutil.copyfile(VECTORS_PATH, path)  # the real file: product data's texts known, the toy notes' chunks not
    settings = settings_for()
    toy_chunks = {text_key(c.text) for n in load_notes(kb_dir) for c in chunk_note(n)}
    written, encoded = refresh_shipped_vectors(settings, path)
    before = dict(np.load(path))
    assert set(before["keys"]) == {text_key(t) for t in startup_texts(kb_dir)}  # the real notes' chunks dropped
    assert toy_chunks <= set(before["keys"]) and written == len(before["keys"])
    assert encoded == len(toy_chunks)  # the product data's texts were in the real file already

    note = kb_dir / "case_studies" / "toy_feed.md"
    note.write_text(note.read_text().replace("two-tower candidate generator", "zebra-striped candidate generator"))
    written2, encoded2 = refresh_shipped_vectors(settings, path)
    after = dict(np.load(path))
    changed = {text_key(c.text) for n in load_notes(kb_dir) for c in chunk_note(n)} - set(before["keys"])
    assert encoded2 == len(changed) >= 1 and written2 == written
    old_rows = dict(zip(before["keys"], before["vectors"]))
    new_rows = dict(zip(after["keys"], after["vectors"]))
    kept = set(old_rows) & set(new_rows)
    assert len(kept) == written - len(changed)
    assert all(np.array_equal(old_rows[k], new_rows[k]) for k in kept)  # bit for bit


def test_a_bulk_call_on_per_core_sessions_gives_the_vectors_of_the_single_session() -> None:
    """A cold ingest spreads its batches over one session per core: the vectors must not change."""
    texts = [f"Chunk {i}: the ranker scores {i * 7} candidates per request within {20 + i} ms." for i in range(70)]
    assert len(texts) >= embeddings.BULK_TEXTS
    bulk = embeddings.MiniLM().run_model(texts)
    one = np.vstack([embeddings.MiniLM().run_model(texts[i:i + 10]) for i in range(0, len(texts), 10)])
    assert np.allclose(bulk, one, atol=1e-5)
