"""The vector store: a Chroma collection of knowledge chunks, local or on a server.

The collection is reached through LangChain's `langchain_chroma.Chroma` vector store
with our own `MiniLMEmbeddings` adapter, which answers chunk texts from the shipped
vectors (embeddings.py) and runs the model only on texts it has never seen.

Ingest is incremental: each chunk carries its note's content hash, so unchanged
notes are not re-embedded and the chunks of deleted notes are removed. Every
note is validated before the collection is touched, so a malformed note leaves
the previous index exactly as it was.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma

from .config import Settings
from .embeddings import VECTORS_PATH, KnownVectors, MiniLM, MiniLMEmbeddingFunction, MiniLMEmbeddings, get_encoder
from .errors import ConfigError, IndexMissingError, NoteError
from .knowledge import Chunk, Note, chunk_note, load_notes

COLLECTION = "mlsd_knowledge"


def _chroma_settings() -> ChromaSettings:
    """A fresh settings object per client: chromadb's client factories mutate the one they get
    (HttpClient sets the API impl, host and port), so a shared one made later local clients talk to
    the server, and a second server URL fail."""
    return ChromaSettings(anonymized_telemetry=False)


def open_client(settings: Settings):
    """A PersistentClient under the data dir, or an HttpClient when MLSD_CHROMA_URL is set."""
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"MLSD_CHROMA_URL must look like http://host:port, got {settings.chroma_url!r}")
        return chromadb.HttpClient(host=url.hostname, port=url.port or 8000, ssl=url.scheme == "https",
                                   settings=_chroma_settings())
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.index_dir), settings=_chroma_settings())


@dataclass
class IngestReport:
    added: list[str]
    unchanged: list[str]
    removed: list[str]
    chunks: int
    model_runs: int = 0  # chunk texts the model had to encode (the rest came from the shipped vectors)

    def summary(self) -> str:
        return (f"ingest: {len(self.added)} note(s) embedded, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed; {self.chunks} chunks in the index "
                f"({self.model_runs} run through the model)")


class KnowledgeIndex:
    """The collection plus the operations the product needs on it."""

    def __init__(self, client, encoder: MiniLM | None = None) -> None:
        self.encoder = encoder or get_encoder()
        # Our Chroma embedding function goes into the collection's stored configuration (so
        # other clients can reopen it and query by text, and Chroma never falls back to its
        # default function, which downloads a model); LangChain embeds with our adapter.
        self.store = Chroma(client=client, collection_name=COLLECTION,
                            embedding_function=MiniLMEmbeddings(self.encoder),
                            collection_configuration={"embedding_function": MiniLMEmbeddingFunction()})

    def count(self) -> int:
        return len(self.store.get(include=[])["ids"])

    def is_empty(self) -> bool:
        return not self.store.get(limit=1, include=[])["ids"]

    def _indexed_digests(self) -> dict[str, str]:
        got = self.store.get(include=["metadatas"])
        return {m["source"]: m["digest"] for m in got["metadatas"]}

    def ingest(self, notes: list[Note], progress: Callable[[str], None] | None = None) -> IngestReport:
        indexed = self._indexed_digests()
        current = {n.source for n in notes}
        removed = sorted(set(indexed) - current)
        for source in removed:
            self.store.delete(where={"source": source})
        added, unchanged = [], []
        runs_before = self.encoder.model_runs
        for i, note in enumerate(notes, 1):
            if indexed.get(note.source) == note.digest:
                unchanged.append(note.source)
                continue
            self._replace(note)
            added.append(note.source)
            if progress:
                progress(f"[{i}/{len(notes)}] embedded {note.source}")
        return IngestReport(added, unchanged, removed, self.count(), self.encoder.model_runs - runs_before)

    def _replace(self, note: Note) -> None:
        chunks = chunk_note(note)
        self.store.delete(where={"source": note.source})
        self.store.add_texts([c.text for c in chunks], metadatas=[_metadata(c) for c in chunks],
                             ids=[c.id for c in chunks])

    def all_chunks(self) -> tuple[list[Chunk], np.ndarray]:
        """Every chunk with its stored vector (rows of the matrix, in the same order)."""
        got = self.store.get(include=["documents", "metadatas", "embeddings"])
        chunks = [_chunk(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
        return chunks, np.asarray(got["embeddings"], dtype=np.float32).reshape(len(chunks), -1)


def _metadata(c: Chunk) -> dict:
    # Chroma metadata cannot hold None: "" stands for "no case" (framework notes).
    return {"source": c.source, "case": c.case or "", "phase": c.phase, "heading": c.heading, "digest": c.digest}


def _chunk(cid: str, doc: str, m: dict) -> Chunk:
    return Chunk(id=cid, source=m["source"], case=m["case"] or None, phase=m["phase"],
                 heading=m["heading"], text=doc, digest=m["digest"])


def _stderr_progress(line: str) -> None:
    if sys.stderr.isatty():
        print(line, file=sys.stderr, flush=True)


def ingest(settings: Settings, progress: Callable[[str], None] | None = _stderr_progress,
           encoder: MiniLM | None = None) -> IngestReport:
    """Validate every note first, then bring the index up to date.

    `encoder` defaults to the shared one (shipped vectors first); pass `MiniLM()` to embed
    everything with the model, as bench/retrieval.py does to time a cold ingest.
    """
    notes = load_notes(settings.knowledge_dir)
    return KnowledgeIndex(open_client(settings), encoder).ingest(notes, progress)


def shipped_texts(notes: list[Note]) -> list[str]:
    """Every text a fresh start embeds: the chunks of these notes and the signal detector's
    exemplars, descriptions and negatives (collected by building a detector that records them)."""
    from .signals import SignalDetector

    texts = [c.text for n in notes for c in chunk_note(n)]
    recorder = _Recorder()
    SignalDetector(recorder)
    return list(dict.fromkeys(texts + recorder.texts))


class _Recorder:
    """An encoder that only notes what it is asked to encode."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts) -> np.ndarray:
        self.texts += list(texts)
        return np.zeros((len(texts), 384), np.float32)


def refresh_shipped_vectors(settings: Settings, path: Path = VECTORS_PATH) -> tuple[int, int]:
    """Rewrite the shipped vectors for the notes in `settings.knowledge_dir` and the detector data:
    texts already there are kept as they are, new ones are encoded, gone ones dropped.
    Returns (texts written, texts the model encoded)."""
    texts = shipped_texts(load_notes(settings.knowledge_dir))
    encoder = MiniLM(KnownVectors.load(path))
    vectors = encoder.encode(texts)
    return KnownVectors.save(texts, vectors, path), encoder.model_runs


def open_index(settings: Settings, build_if_missing: bool = True, notes: list[Note] | None = None) -> KnowledgeIndex:
    """The index, built first when it is missing and brought up to date when notes changed.

    Refreshing is incremental (a no-op costs a few milliseconds), so an edited note is
    searchable without a manual `mlsd-bot ingest`. Pass `notes` when the caller has loaded
    them already. If a note is malformed, an existing index is still served as it was,
    with a one-line warning; with no index, it is an error.
    """
    index = KnowledgeIndex(open_client(settings))
    if index.is_empty() and not build_if_missing:
        raise IndexMissingError()
    if notes is None:
        try:
            notes = load_notes(settings.knowledge_dir)
        except NoteError as e:
            if index.is_empty():
                raise
            print(f"mlsd-bot: warning: {e} - serving the previous index; fix the note and run `mlsd-bot ingest`",
                  file=sys.stderr)
            return index
    index.ingest(notes, _stderr_progress)
    return index
