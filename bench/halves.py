"""The tune / held-out halves of the bench data (bench/split.yaml), shared by every bench script.

A row belongs to the half of its case, so no case leaks across. Rows of no case
(retrieval queries about the framework notes) are split by a hash of their text:
fixed once, and independent of any result.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

SPLIT = Path(__file__).parent / "split.yaml"
HALVES = ("tune", "heldout")


def load_split(path: Path = SPLIT) -> dict[str, str]:
    """case id -> "tune" | "heldout"; a case listed on both sides is an error."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    both = set(raw["tune"]) & set(raw["heldout"])
    if both:
        raise SystemExit(f"{path}: cases on both sides: {sorted(both)}")
    return {**{c: "tune" for c in raw["tune"]}, **{c: "heldout" for c in raw["heldout"]}}


def half_of(case: str | None, text: str, split: dict[str, str]) -> str:
    if case is None:
        return HALVES[hashlib.sha256(text.encode("utf-8")).digest()[0] % 2]
    if case not in split:
        raise SystemExit(f"case {case!r} is in neither half of {SPLIT.name}: add it to one side")
    return split[case]


def by_half(rows: list[dict], case_of, text_of) -> dict[str, list[dict]]:
    """{"tune": [...], "heldout": [...]} of `rows`, each row placed by its case (or text)."""
    split = load_split()
    out: dict[str, list[dict]] = {h: [] for h in HALVES}
    for row in rows:
        out[half_of(case_of(row), text_of(row), split)].append(row)
    return out
