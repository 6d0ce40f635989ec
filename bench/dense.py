"""Multi-signal recall on dense, strong-candidate answers (tests/data/dense_answers.jsonl).

Strong candidates pack two or three signals into one long sentence; this prints micro
P/R/F1 of the detector on those sentences, tune and held-out cases side by side
(bench/split.yaml), and how many name-drop sentences (a signal word used in passing,
or one bare term) gained a signal beyond their label. `--show` lists each miss and
extra on the tune half only (the half changes are chosen on).
usage: .venv/bin/python bench/dense.py [--show]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from halves import HALVES, by_half  # noqa: E402
from interview import prf  # noqa: E402
from mlsd_bot.embeddings import get_encoder  # noqa: E402
from mlsd_bot.signals import SignalDetector  # noqa: E402

DATA = ROOT / "tests" / "data" / "dense_answers.jsonl"


def load(path: Path = DATA) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", action="store_true", help="misses and extras on the tune half")
    show = ap.parse_args().show
    detector = SignalDetector(get_encoder())
    rows = load()
    for row in rows:
        row["found"] = detector.detect(row["text"], row["phase"]).signals
    dense = by_half([r for r in rows if r["kind"] == "dense"], lambda r: r["case"], lambda r: r["text"])
    drops = by_half([r for r in rows if r["kind"] == "namedrop"], lambda r: r["case"], lambda r: r["text"])
    for half in HALVES:
        part = dense[half]
        P, R, F = prf([r["signals"] for r in part], [r["found"] for r in part])
        extra = sum(bool(set(r["found"]) - set(r["signals"])) for r in drops[half])
        print(f"dense answers ({half}, {len(part)} sentences): P {P:.2f} R {R:.2f} F1 {F:.2f}; "
              f"name-drops gaining a signal: {extra}/{len(drops[half])}")
    if show:
        for r in dense["tune"] + drops["tune"]:
            miss, extra = set(r["signals"]) - set(r["found"]), set(r["found"]) - set(r["signals"])
            if miss or extra:
                print(f"  -{sorted(miss)} +{sorted(extra)} [{r['phase']}] {r['text']}")


if __name__ == "__main__":
    main()
