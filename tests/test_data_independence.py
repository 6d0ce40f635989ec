"""The product's tuning data is not a copy of the data it is measured on.

Every sentence in mlsd_bot/data/*.yaml (signal exemplars, descriptions, negatives,
pitfall wording; regex cues by their literal words) is compared with every sentence
of bench/data/ and of ../shared/eval/. A near-copy - MiniLM cosine >= 0.9, or a run of
8+ words in common - means the benchmark would measure recall of the training data:
rewrite the bench row in new words (bench/data is ours to change; the shared dev
sets are not). Eval sentences are read only to compare, and never printed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.embeddings import get_encoder

PRODUCT_DATA = PROJECT_ROOT / "mlsd_bot" / "data"
BENCH_DATA = PROJECT_ROOT / "bench" / "data"
SHARED_EVAL = PROJECT_ROOT.parent / "shared" / "eval"  # ../shared beside the checkout, as in CI
COSINE = 0.9
RUN = 8  # words in a row
MIN_WORDS = 4  # strings with fewer (ids like people_you_may_know, single terms) are not sentences
REGEX_KEYS = {"cues", "pattern", "unless", "patterns"}
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _literal(regex: str) -> str:
    """The plain words a regex spells out: escapes and groups become breaks between runs."""
    return re.sub(r"\\[a-zA-Z]|[\\()\[\]{}|?*+^$.]", " | ", regex)


def _strings(node, key: str = "") -> list[tuple[str, str, bool]]:
    """(where, text, is_regex) for every string in a YAML tree."""
    if isinstance(node, str):
        return [(key, node, key.rsplit(".", 1)[-1].split("[")[0] in REGEX_KEYS)]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{key}.{k}" if key else str(k))]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{key}[{i}]")]
    return []


def product_sentences() -> list[tuple[str, str, bool]]:
    """(file:where, text, is_regex) of every sentence-like string in mlsd_bot/data/*.yaml and data/case_pitfalls/*.yaml."""
    out = []
    for path in sorted([*PRODUCT_DATA.glob("*.yaml"), *PRODUCT_DATA.glob("case_pitfalls/*.yaml")]):
        for where, text, is_regex in _strings(yaml.safe_load(path.read_text(encoding="utf-8"))):
            if is_regex or len(text.split()) >= MIN_WORDS:
                out.append((f"{path.name}:{where}", text, is_regex))
    return out


def _json_strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _json_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _json_strings(v)]
    return []


def reference_sentences(folder: Path) -> list[tuple[str, str, bool]]:
    """(file:line, text, embed) for every text in the JSONL files under `folder`: each whole text
    (checked for shared word runs) and each of its sentences (also compared by embedding)."""
    out = []
    for path in sorted(folder.rglob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.relative_to(folder.parent)}:{n}"
            for text in _json_strings(json.loads(line)):
                parts = [s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= MIN_WORDS]
                if text.strip() not in parts and len(text.split()) >= MIN_WORDS:
                    out.append((where, text.strip(), False))
                out += [(where, s, True) for s in dict.fromkeys(parts)]
    return out


def _runs(text: str, regex: bool) -> set[tuple[str, ...]]:
    """Every RUN-word window of the text (of each literal stretch, for a regex)."""
    pieces = _literal(text).split("|") if regex else [text]
    return {tuple(w[i:i + RUN]) for p in pieces for w in [_words(p)] for i in range(len(w) - RUN + 1)}


def near_copies(reference: list[tuple[str, str, bool]]) -> list[tuple[str, str, int, str]]:
    """(product where, product text, index into reference, why) for each near-copy."""
    product = product_sentences()
    found = []
    ref_runs: dict[tuple[str, ...], int] = {}
    for j, (_, s, _) in enumerate(reference):
        for r in _runs(s, False):
            ref_runs.setdefault(r, j)
    for where, text, regex in product:
        hit = next((ref_runs[r] for r in _runs(text, regex) if r in ref_runs), None)
        if hit is not None:
            found.append((where, text, hit, f"{RUN}+ words in common"))
    prose = [(w, t) for w, t, regex in product if not regex]
    embedded = [j for j, (_, _, embed) in enumerate(reference) if embed]
    encoder = get_encoder()
    sims = encoder.encode([t for _, t in prose]) @ encoder.encode([reference[j][1] for j in embedded]).T
    for (where, text), row in zip(prose, sims):
        j = int(row.argmax())
        if row[j] >= COSINE and not any(f[0] == where for f in found):
            found.append((where, text, embedded[j], f"cosine {row[j]:.2f}"))
    return found


def test_the_comparison_catches_copies_and_paraphrases_but_not_topic_overlap() -> None:
    """The detector of near-copies itself, on sentences of our own."""
    exemplar = "we would compare feature distributions between training and serving every single day"
    assert _runs("So we would compare feature distributions between training and serving every single day, ok?", False) \
        & _runs(exemplar, False)
    assert _runs(r"\bcompare feature distributions between training and serving every\b", True) & _runs(exemplar, False)
    assert not _runs("drift: compare distributions daily", False) & _runs(exemplar, False)
    a, b, c = get_encoder().encode([exemplar, "Every day we'd compare the training and serving feature distributions.",
                                    "Every day we retrain the ranking model on fresh clicks."])
    assert a @ b >= COSINE > a @ c


def test_product_data_is_no_copy_of_bench_data() -> None:
    reference = reference_sentences(BENCH_DATA)
    assert len(reference) > 300
    found = near_copies(reference)
    # Like the shared sets, the bench row is named by file:line only: the bench's held-out rows must not
    # reach whoever (a helper session too) reads this message while writing product data.
    if found:
        pytest.fail(f"{len(found)} product sentence(s) near-copy bench rows - reword them:\n" + "\n".join(
            f"  {where}: {text!r} ~ {reference[j][0]} ({why})" for where, text, j, why in found), pytrace=False)


def test_product_data_is_no_copy_of_the_shared_eval_sets() -> None:
    if not SHARED_EVAL.is_dir():
        ci = " (CI=true: the CI checkout must have ../shared beside it)" if os.environ.get("CI") == "true" else ""
        pytest.fail(f"{SHARED_EVAL} not found: clone the shared repository beside this checkout{ci}")
    reference = reference_sentences(SHARED_EVAL)
    assert reference, f"no sentences found under {SHARED_EVAL}"
    found = near_copies(reference)
    # The eval sentence is never shown (pytest.fail, not assert, so no introspection prints it):
    # only where our sentence is and which eval file it resembles.
    if found:
        pytest.fail(f"{len(found)} product sentence(s) near-copy a ../shared/eval sentence - reword them:\n" + "\n".join(
            f"  {where}: {text!r} ~ {reference[j][0]} ({why})" for where, text, j, why in found), pytrace=False)
