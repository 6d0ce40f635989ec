"""Choose the signal detector's thresholds (constants at the top of mlsd_bot/signals.py) on the tune half only.

Coordinate search: each constant in turn over its grid, the others held, two rounds,
(CONTEXT_BONUS is not searched: the bench messages carry no question they answer)
keeping a change only when it raises micro-F1 on the tune half's messages (on a tie, the
value nearest the current one). The held-out
half is scored once for the current and for the chosen values and printed beside them
- it never steers the choice. Nothing is written: the chosen values go into signals.py only
if the behaviour tests (tests/test_signals.py, test_policy.py, test_conversation.py: vague
sentences earn nothing, plain answers count) still pass with them.
Usage: .venv/bin/python bench/tune_signals.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from halves import by_half  # noqa: E402
from interview import DATA, prf  # noqa: E402

import mlsd_bot.signals as signals  # noqa: E402
from mlsd_bot.embeddings import get_encoder  # noqa: E402

GRID = {
    "SIM_FLOOR": [round(0.40 + 0.025 * i, 3) for i in range(13)],  # 0.40 .. 0.70
    "RAW_FLOOR": [round(0.40 + 0.025 * i, 3) for i in range(13)],
    "NEG_MARGIN": [-0.04, -0.02, 0.0, 0.02, 0.04, 0.06],
    "RUNNER_UP": [0.0, 0.01, 0.02, 0.03, 0.05, 0.08],
    "PHASE_BONUS": [0.0, 0.04, 0.08, 0.10, 0.12, 0.14, 0.16, 0.20],
    "EXPLAINED_FLOOR": [0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 1.01],  # 1.01: a cue-explained sentence adds nothing
}
ROUNDS = 2


class MemoEncoder:
    """The shared encoder, remembering every sentence: the sweep re-detects the same messages."""

    def __init__(self) -> None:
        self.inner, self.memo = get_encoder(), {}

    def encode(self, texts) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            self.memo.update(zip(todo, self.inner.encode(todo)))
        return np.stack([self.memo[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def f1(detector, rows: list[dict]) -> tuple[float, float, float]:
    return prf([r["signals"] for r in rows], [detector.detect(r["text"], r["phase"]).signals for r in rows])


def current() -> dict[str, float]:
    missing = [name for name in GRID if not hasattr(signals, name)]
    if missing:
        sys.exit(f"mlsd_bot/signals.py no longer defines {missing}: update GRID in {Path(__file__).name}")
    return {name: getattr(signals, name) for name in GRID}


def apply(values: dict[str, float]) -> None:
    for name, v in values.items():
        setattr(signals, name, v)


def search(detector, tune: list[dict], start: dict[str, float]) -> dict[str, float]:
    """Among values with the same tune F1, the one nearest the current setting wins: no change without gain."""
    best, best_f1 = dict(start), f1(detector, tune)[2]
    for rnd in range(ROUNDS):
        for name, grid in GRID.items():
            for v in grid:
                apply({**best, name: v})
                score = f1(detector, tune)[2]
                tie = abs(score - best_f1) <= 1e-9 and abs(v - start[name]) < abs(best[name] - start[name])
                if score > best_f1 + 1e-9 or tie:
                    best, best_f1 = {**best, name: v}, max(score, best_f1)
            apply(best)
            print(f"  round {rnd + 1}: {name:<16} = {best[name]:<6} tune F1 {best_f1:.3f}")
    return best


def main() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    halves = by_half(rows, lambda r: r["case"], lambda r: r["text"])
    detector = signals.SignalDetector(MemoEncoder())
    start = current()
    print(f"tuning on {len(halves['tune'])} tune messages; {len(halves['heldout'])} held-out messages are only reported")
    chosen = search(detector, halves["tune"], start)
    print(f"\n{'':10}{'tune P':>8}{'R':>6}{'F1':>6}{'held-out P':>12}{'R':>6}{'F1':>6}   values")
    for label, values in (("current", start), ("chosen", chosen)):
        apply(values)
        (tp, tr, tf), (hp, hr, hf) = f1(detector, halves["tune"]), f1(detector, halves["heldout"])
        print(f"{label:10}{tp:8.3f}{tr:6.3f}{tf:6.3f}{hp:12.3f}{hr:6.3f}{hf:6.3f}   "
              + ", ".join(f"{k}={v}" for k, v in values.items()))
    apply(start)


if __name__ == "__main__":
    main()
