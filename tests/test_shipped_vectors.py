"""The shipped vectors (mlsd_bot/data/embedding/*vectors.npz, one file per model build): current, correct, used.

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
from mlsd_bot.embeddings import GRADING, KNOWLEDGE, MODELS, KnownVectors, MiniLM, get_encoder, text_key
from mlsd_bot.knowledge import chunk_note, load_notes
from mlsd_bot.signals import SignalDetector
from mlsd_bot.config import load_settings
from mlsd_bot.store import ingest, refresh_shipped_vectors, startup_vectors

from conftest import REAL_KNOWLEDGE

REFRESH = "make vectors   (or: .venv/bin/mlsd-bot ingest --refresh-vectors), then commit mlsd_bot/data/embedding/*.npz"
BUILDS = pytest.mark.parametrize("model", MODELS, ids=[m.vectors.name for m in MODELS])


def startup_texts(knowledge_dir) -> dict:
    """What a fresh start over these notes embeds, per model build (answered from the shipped files where they can)."""
    settings = load_settings({"MLSD_DATA_DIR": "/nonexistent-unused", "MLSD_KNOWLEDGE_DIR": str(knowledge_dir),
                              "MLSD_VOICE": "offline"})
    recorded = startup_vectors(settings, [MiniLM(KnownVectors.load(m), m) for m in MODELS])
    return {m: list(texts) for m, texts in recorded.items()}


@pytest.fixture(scope="module")
def needed_by_build() -> dict:
    return {m: {text_key(t): t for t in texts} for m, texts in startup_texts(REAL_KNOWLEDGE).items()}


@pytest.fixture
def needed(needed_by_build, model) -> dict[str, str]:
    return needed_by_build[model]


@pytest.fixture
def shipped(model) -> dict:
    with np.load(model.vectors, allow_pickle=False) as f:
        return {"model": str(f["model"]), "keys": [str(k) for k in f["keys"]], "vectors": f["vectors"]}


def test_each_build_embeds_its_own_texts(needed_by_build) -> None:
    """The knowledge chunks (and the report's advice queries, one per signal) go to the KNOWLEDGE build;
    the grader's texts (exemplars, pitfalls, facts) to GRADING."""
    chunks = {text_key(c.text) for n in load_notes(REAL_KNOWLEDGE) for c in chunk_note(n)}
    queries = {text_key(spec.description) for spec in SignalDetector(get_encoder()).specs.values()}
    assert set(needed_by_build[KNOWLEDGE]) == chunks | queries
    assert not chunks & set(needed_by_build[GRADING]) and len(needed_by_build[GRADING]) > 1000


@BUILDS
def test_shipped_vectors_match_what_a_fresh_start_embeds(model, shipped, needed) -> None:
    notes = load_notes(REAL_KNOWLEDGE)
    assert shipped["model"] == model.checksum, f"{model.vectors.name} was made with another model/tokenizer: run {REFRESH}"
    have = set(shipped["keys"])
    stale_sources = sorted({c.source for n in notes for c in chunk_note(n) if text_key(c.text) not in have})
    missing = [t for k, t in needed.items() if k not in have]
    extra = len(have - set(needed))
    assert not missing and not extra, (
        f"{model.vectors.name} is stale: {len(missing)} text(s) missing (notes: {', '.join(stale_sources) or 'none'}; "
        f"first: {missing[:1]!r}), {extra} no longer used. Run: {REFRESH}")


@BUILDS
def test_shipped_vectors_are_what_the_model_computes(model, shipped, needed) -> None:
    """A sample re-encoded with the model (the shipped table bypassed) points the same way."""
    texts = needed
    rows = [i for i, k in enumerate(shipped["keys"]) if k in texts]
    sample = [rows[i] for i in np.random.default_rng(7).choice(len(rows), size=12, replace=False)]
    fresh = get_encoder(model).run_model([texts[shipped["keys"][i]] for i in sample])
    stored = shipped["vectors"][sample].astype(np.float32)
    cos = (fresh * stored).sum(axis=1) / np.linalg.norm(stored, axis=1)
    assert cos.min() > 0.999, f"shipped vectors disagree with the model (cos {cos.min():.4f}): run {REFRESH}"


def test_a_fresh_index_of_the_real_notes_runs_no_text_through_the_model(settings_for) -> None:
    encoder = MiniLM(KnownVectors.load(KNOWLEDGE), KNOWLEDGE)
    report = ingest(settings_for(knowledge_dir=REAL_KNOWLEDGE), progress=None, encoder=encoder)
    assert report.chunks > 300 and len(report.added) == len(load_notes(REAL_KNOWLEDGE))
    assert report.model_runs == 0 and encoder._session is None  # the model was never even loaded


def test_known_texts_come_from_the_table_and_unknown_ones_from_the_model(tmp_path) -> None:
    texts = ["feature store freshness", "PSI above 0.2 triggers retraining", "two-tower retrieval"]
    vectors = get_encoder().run_model(texts)
    path = tmp_path / "v.npz"
    assert KnownVectors.save(texts[:2], vectors[:2], GRADING, path) == 2
    encoder = MiniLM(KnownVectors.load(GRADING, path))
    got = encoder.encode(texts)
    assert encoder.model_runs == 1  # only the third text ran through the model
    assert np.allclose(got, vectors, atol=2e-3)  # float16 storage
    assert not np.array_equal(got[0], vectors[0])  # ... so the first really came from the file


def test_vectors_from_another_model_are_ignored(tmp_path) -> None:
    path = tmp_path / "v.npz"
    np.savez_compressed(path, model=np.array("0" * 16), keys=np.array([text_key("x")]),
                        vectors=np.ones((1, 384), np.float16))
    assert len(KnownVectors.load(GRADING, path)) == 0
    assert len(KnownVectors.load(GRADING, tmp_path / "absent.npz")) == 0


def test_refresh_keeps_unchanged_rows_encodes_new_texts_and_drops_gone_ones(settings_for, kb_dir, tmp_path) -> None:
    paths = {m: tmp_path / m.vectors.name for m in MODELS}
    for m, path in paths.items():  # the real files: product data's texts known, the toy notes' chunks not
        shutil.copyfile(m.vectors, path)
    settings = settings_for()
    toy_chunks = {text_key(c.text) for n in load_notes(kb_dir) for c in chunk_note(n)}
    written, encoded = refresh_shipped_vectors(settings, paths)
    before = {m: dict(np.load(path)) for m, path in paths.items()}
    assert toy_chunks <= set(before[KNOWLEDGE]["keys"])
    assert not {text_key(c.text) for n in load_notes(REAL_KNOWLEDGE) for c in chunk_note(n)} & set(before[KNOWLEDGE]["keys"])
    wanted = startup_texts(kb_dir)
    assert all(set(before[m]["keys"]) == {text_key(t) for t in wanted[m]} for m in MODELS)
    assert written == sum(len(b["keys"]) for b in before.values())
    assert encoded == len(toy_chunks)  # the product data's texts were in the real file already

    note = kb_dir / "case_studies" / "toy_feed.md"
    note.write_text(note.read_text().replace("two-tower candidate generator", "zebra-striped candidate generator"))
    written2, encoded2 = refresh_shipped_vectors(settings, paths)
    after = dict(np.load(paths[KNOWLEDGE]))
    changed = {text_key(c.text) for n in load_notes(kb_dir) for c in chunk_note(n)} - set(before[KNOWLEDGE]["keys"])
    assert encoded2 == len(changed) >= 1 and written2 == written
    old_rows = dict(zip(before[KNOWLEDGE]["keys"], before[KNOWLEDGE]["vectors"]))
    new_rows = dict(zip(after["keys"], after["vectors"]))
    kept = set(old_rows) & set(new_rows)
    assert len(kept) == len(before[KNOWLEDGE]["keys"]) - len(changed)
    assert all(np.array_equal(old_rows[k], new_rows[k]) for k in kept)  # bit for bit
    assert np.array_equal(np.load(paths[GRADING])["vectors"], before[GRADING]["vectors"])  # untouched


def test_a_bulk_call_on_per_core_sessions_gives_the_vectors_of_the_single_session() -> None:
    """A cold ingest spreads its texts over one session per core: the vectors must not change."""
    texts = [f"Chunk {i}: the ranker scores {i * 7} candidates per request within {20 + i} ms." * (1 + i % 5)
             for i in range(70)]
    assert len(texts) >= embeddings.BULK_TEXTS
    bulk = embeddings.MiniLM(model=KNOWLEDGE).run_model(texts)
    one = np.vstack([embeddings.MiniLM(model=KNOWLEDGE).run_model(texts[i:i + 10]) for i in range(0, len(texts), 10)])
    assert np.allclose(bulk, one, atol=1e-5)


def test_a_texts_vector_does_not_depend_on_the_texts_encoded_with_it() -> None:
    """The model quantises activations per call: a vector must still be its text's alone, or the
    shipped vectors (made in one big call) would disagree with what a turn computes."""
    text = "Labels come from purchases within seven days, so they arrive late."
    company = ["ok", "A very long paragraph about feature stores, freshness and backfills. " * 12]
    alone = embeddings.MiniLM(model=KNOWLEDGE).run_model([text])[0]
    assert np.allclose(embeddings.MiniLM(model=KNOWLEDGE).run_model([*company, text])[2], alone, atol=1e-5)
    assert np.allclose(embeddings.MiniLM(model=KNOWLEDGE).run_model([text, *company] * 40)[0], alone, atol=1e-5)  # a bulk call
