"""The vector store: a Chroma collection of knowledge chunks, local or on a server.

Ingest is incremental: each chunk carries its note's content hash, so unchanged
notes are not re-embedded and the chunks of deleted notes are removed. Every
note is validated before the collection is touched, so a malformed note leaves
the previous index exactly as it was. A store Chroma cannot read (a damaged
chroma.sqlite3) is a one-line error naming it; `ingest --rebuild` starts afresh.

Documents are added and read through LangChain's `langchain_chroma.Chroma` vector store
with our own `MiniLMEmbeddings` adapter (the KNOWLEDGE build of the model), which answers known
texts from the shipped vectors (embeddings.py) and runs the model only on texts it has never seen.
`refresh_shipped_vectors` rewrites those files from what a fresh start embeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import urlparse

try:
    import fcntl
except ImportError:  # Windows: no advisory file locks
    fcntl = None

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaError, NotFoundError
from langchain_chroma import Chroma

from .config import Settings
from .embeddings import (KNOWLEDGE, MODELS, KnownVectors, MiniLM, MiniLMEmbeddingFunction, MiniLMEmbeddings,
                         ModelFile, get_encoder, shared_encoder)
from .errors import ConfigError, IndexMissingError, StoreError
from .knowledge import Chunk, Note, chunk_note, load_notes, out_of_service, read_notes

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
    try:
        with _guard(_where(settings)):
            return chromadb.PersistentClient(path=str(settings.index_dir), settings=_chroma_settings())
    except StoreError:
        _forget_local_client(settings.index_dir)  # chroma caches the half-opened store: a retry must start over
        raise


def _where(settings: Settings) -> str:
    """How errors name the store: the local file, or the server's collection."""
    if settings.chroma_url:
        return f"collection {COLLECTION} on the Chroma server {settings.chroma_url}"
    return str(settings.index_dir / "chroma.sqlite3")


@contextmanager
def _guard(where: str) -> Iterator[None]:
    """Chroma's errors on a store it cannot read become one line naming it and what to do."""
    try:
        yield
    except ChromaError as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        remedy = "run `mlsd-bot ingest --rebuild`"
        if where.endswith("chroma.sqlite3"):
            remedy += f" or remove the folder {Path(where).parent}"
        raise StoreError(f"{where}: the knowledge index cannot be read ({reason}) - {remedy}") from None


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

    def __init__(self, client, where: str = "the knowledge index", encoder: MiniLM | None = None) -> None:
        self._client, self.where = client, where
        self.encoder = encoder or get_encoder(KNOWLEDGE)
        # Always pass our function: Chroma must never fall back to its default embedding
        # function, which downloads a model; it is stored with the collection, so any client
        # can reopen it and query by text. LangChain's store on the same collection embeds
        # documents with our adapter.
        with _guard(where):
            self.collection = client.get_or_create_collection(COLLECTION, embedding_function=MiniLMEmbeddingFunction())
            self.store = Chroma(client=client, collection_name=COLLECTION,
                                embedding_function=MiniLMEmbeddings(self.encoder))

    def count(self) -> int:
        with _guard(self.where):
            return self.collection.count()

    def is_empty(self) -> bool:
        return self.count() == 0

    def _indexed_digests(self) -> dict[str, tuple[str, str | None]]:
        """Per indexed note: its content digest and the model build its chunks were embedded with."""
        got = self.store.get(include=["metadatas"])
        return {m["source"]: (m["digest"], m.get("model")) for m in got["metadatas"]}

    def ingest(self, notes: list[Note], progress: Callable[[str], None] | None = None,
               keep: Iterable[str] = ()) -> IngestReport:
        """Bring the collection up to `notes`. Sources in `keep` (broken notes) keep their chunks as they are."""
        with _guard(self.where):
            return self._ingest(notes, progress, set(keep))

    def _ingest(self, notes: list[Note], progress: Callable[[str], None] | None, keep: set[str]) -> IngestReport:
        indexed = self._indexed_digests()
        current = {n.source for n in notes}
        removed = sorted(set(indexed) - current - keep)
        for source in removed:
            self.store.delete(where={"source": source})
        added, unchanged = [], []
        runs_before = self.encoder.model_runs
        # A note is embedded again when its text changed, or when its chunks came from another model
        # build (an index from an older release): vectors of two builds must not meet in one search.
        model = self.encoder.model.checksum
        changed = {n.source: chunk_note(n) for n in notes if indexed.get(n.source) != (n.digest, model)}
        # One bulk call for every changed chunk (the model then runs on all cores); the per-note
        # writes below find these vectors among the encoder's recent ones.
        self.encoder.encode([c.text for chunks in changed.values() for c in chunks])
        for i, note in enumerate(notes, 1):
            if note.source not in changed:
                unchanged.append(note.source)
                continue
            self._replace(note.source, changed[note.source])
            added.append(note.source)
            if progress:
                progress(f"[{i}/{len(notes)}] embedded {note.source}")
        return IngestReport(added, unchanged, removed, self.collection.count(), self.encoder.model_runs - runs_before)

    def _replace(self, source: str, chunks: list[Chunk]) -> None:
        self.store.delete(where={"source": source})
        model = self.encoder.model.checksum
        self.store.add_texts([c.text for c in chunks], metadatas=[_metadata(c, model) for c in chunks],
                             ids=[c.id for c in chunks])

    def all_chunks(self) -> tuple[list[Chunk], np.ndarray]:
        """Every chunk with its stored vector (rows of the matrix, in the same order)."""
        with _guard(self.where):
            got = self.store.get(include=["documents", "metadatas", "embeddings"])
        chunks = [_chunk(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
        return chunks, np.asarray(got["embeddings"], dtype=np.float32).reshape(len(chunks), -1)


def _metadata(c: Chunk, model: str) -> dict:
    # Chroma metadata cannot hold None: "" stands for "no case" (framework notes).
    return {"source": c.source, "case": c.case or "", "phase": c.phase, "heading": c.heading, "digest": c.digest,
            "model": model}


def _chunk(cid: str, doc: str, m: dict) -> Chunk:
    return Chunk(id=cid, source=m["source"], case=m["case"] or None, phase=m["phase"],
                 heading=m["heading"], text=doc, digest=m["digest"])


def _stderr_progress(line: str) -> None:
    if sys.stderr.isatty():
        print(line, file=sys.stderr, flush=True)


@contextmanager
def _one_writer(settings: Settings) -> Iterator[None]:
    """Hold the local store's file lock while it is built or brought up to date.

    Chroma's local store is not safe with two processes writing it: two CLI runs started at once
    on a fresh data dir (an evaluation with two workers) both built it and left an index neither
    could read. The second process now waits, then finds the index up to date. A Chroma server
    orders writes itself; without fcntl (Windows) there is no lock."""
    if settings.chroma_url or fcntl is None:
        yield
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "chroma.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed
        yield


def ingest(settings: Settings, progress: Callable[[str], None] | None = _stderr_progress,
           rebuild: bool = False, encoder: MiniLM | None = None) -> IngestReport:
    """Validate every note first (strict: one bad note stops it), then bring the index up to date.

    `rebuild` discards the index first (a damaged local store, or the server's collection).
    `encoder` defaults to the shared one (shipped vectors first); pass `MiniLM(model=KNOWLEDGE)` to embed
    everything with the model, as bench/retrieval.py does to time a cold ingest.
    """
    notes = load_notes(settings.knowledge_dir)
    with _one_writer(settings):
        if rebuild:
            _discard(settings)
        return _open(settings, encoder).ingest(notes, progress)


def _open(settings: Settings, encoder: MiniLM | None = None) -> KnowledgeIndex:
    return KnowledgeIndex(open_client(settings), where=_where(settings), encoder=encoder)


def startup_vectors(settings: Settings, encoders: list[MiniLM]) -> dict[ModelFile, dict[str, "np.ndarray"]]:
    """Every text a fresh start embeds, with its vector, per model build: the interviewer's dependencies
    are built in an empty data dir (so the index, the detector's exemplars, the mistake spotter's examples
    and every case's facts are embedded) with `encoders` as the shared encoders, which record them."""
    from .interview import build_deps

    load_notes(settings.knowledge_dir)  # strict: a broken note stops it, as ingest does
    for encoder in encoders:
        encoder.recorded = {}
    try:
        with contextlib.ExitStack() as stack:
            for encoder in encoders:
                stack.enter_context(shared_encoder(encoder))
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlsd-vectors-"))
            fresh = dataclasses.replace(settings, data_dir=Path(tmp), chroma_url=None)
            deps = build_deps(fresh, voice="offline")
            for case in deps.cases:
                deps.factbook(case)
            # The report's advice searches the notes with these: shipped too, so an app never loads
            # the knowledge build's model just to write a report.
            deps.retriever.encoder.encode(list(deps.descriptions().values()))
            _forget_local_client(fresh.index_dir)
        return {encoder.model: encoder.recorded for encoder in encoders}
    finally:
        for encoder in encoders:
            encoder.recorded = None


def refresh_shipped_vectors(settings: Settings, paths: dict[ModelFile, Path] | None = None) -> tuple[int, int]:
    """Rewrite each build's shipped vectors (at `paths`, default their own) from what a fresh start embeds:
    texts already in a file keep their rows bit for bit, new ones are encoded, gone ones dropped.
    Returns (written, newly encoded), summed over the builds."""
    paths = paths or {m: m.vectors for m in MODELS}
    encoders = [MiniLM(KnownVectors.load(m, paths[m]), m) for m in MODELS]
    written = 0
    for model, recorded in startup_vectors(settings, encoders).items():
        texts = list(recorded)
        vectors = np.stack([recorded[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)
        written += KnownVectors.save(texts, vectors, model, paths[model])
    return written, sum(e.model_runs for e in encoders)


def _discard(settings: Settings) -> None:
    """Throw the index away: the folder of a local store (it may be unreadable), or the server's collection."""
    if settings.chroma_url:
        with _guard(_where(settings)):
            try:
                open_client(settings).delete_collection(COLLECTION)
            except NotFoundError:
                pass
        return
    _forget_local_client(settings.index_dir)
    shutil.rmtree(settings.index_dir, ignore_errors=True)


def _forget_local_client(path: Path) -> None:
    """Chroma keeps one open store per folder per process; drop ours so the new folder gets a new one."""
    from chromadb.api.shared_system_client import SharedSystemClient

    system = SharedSystemClient._identifier_to_system.pop(str(path), None)
    SharedSystemClient._identifier_to_refcount.pop(str(path), None)
    try:
        if system is not None:
            system.stop()
    except Exception:  # a store that failed to open has nothing to stop
        pass


def open_index(settings: Settings, build_if_missing: bool = True, notes: list[Note] | None = None,
               keep: Iterable[str] = ()) -> KnowledgeIndex:
    """The index, built first when it is missing and brought up to date when notes changed.

    Refreshing is incremental (a no-op costs a few milliseconds), so an edited note is
    searchable without a manual `mlsd-bot ingest`. Pass `notes` when the caller has loaded
    them already, and the sources of broken notes in `keep`. Without `notes`, the valid
    notes are read here and each broken one is a one-line warning: it keeps whatever the
    index held for it, every other note is refreshed.
    """
    with _one_writer(settings):
        index = _open(settings)
        if index.is_empty() and not build_if_missing:
            raise IndexMissingError()
        if notes is None:
            notes, broken = read_notes(settings.knowledge_dir)
            for error in broken:
                print(f"mlsd-bot: warning: {out_of_service(error)}", file=sys.stderr)
            keep = [e.path for e in broken]
        if not notes and index.is_empty():
            raise IndexMissingError()
        index.ingest(notes, _stderr_progress, keep=keep)
    return index
