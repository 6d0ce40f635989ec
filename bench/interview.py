"""Interviewer benchmark: signal detection quality and engine time per turn (offline voice).

Prints, in one run:
- micro P/R/F1 of our detector on bench/data/signals.jsonl, side by side with a
  plain keyword-matching baseline on the same messages, on the tune half (the
  cases whose messages the thresholds were chosen on, bench/tune_signals.py) and
  the held-out half (never looked at while tuning), split by case (bench/split.yaml);
- grading error against expert grades (bench/personas.py) and critique recall and false
  alarms (bench/critiques.py), tune and held-out cases side by side, and on the wider blind
  set (bench/data/critiques_wide.jsonl) whose held-out half also has unseen rows of tuned cases;
- engine time per candidate turn (p50/p99, in-process, excluding start-up) over
  full interviews replayed from the same messages, one interview per case.
Usage: .venv/bin/python bench/interview.py
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from critiques import WIDE, critique_figures  # noqa: E402  (bench/ is on sys.path: run as a script)
from halves import HALVES, by_half  # noqa: E402
from personas import grading_error  # noqa: E402
from mlsd_bot.config import load_settings  # noqa: E402
from mlsd_bot.contract import PHASES, SIGNALS  # noqa: E402
from mlsd_bot.embeddings import get_encoder  # noqa: E402
from mlsd_bot.interview import Interview, build_deps  # noqa: E402
from mlsd_bot.signals import SignalDetector  # noqa: E402

DATA = ROOT / "bench" / "data" / "signals.jsonl"

# The baseline a quick keyword matcher would be: each signal's most obvious words.
KEYWORDS = {
    "business_objective": r"business|goal|success", "scale": r"users|qps|million|billion|scale",
    "latency": r"latency|\bms\b|millisecond|real[- ]time", "labels": r"label|annotat",
    "privacy": r"privacy|gdpr|consent|personal", "resources": r"gpu|budget|hardware|infrastructure",
    "ml_objective": r"objective|optimi[sz]e", "io_spec": r"input|output",
    "ml_category": r"classification|regression|ranking", "data_sources": r"data source|logs",
    "features": r"feature", "imbalance": r"imbalance|rare", "sampling": r"sampl|split",
    "baseline": r"baseline|heuristic", "architecture": r"model architecture|neural|transformer|gbdt|tower",
    "multi_stage": r"stage|candidate generation", "loss": r"loss", "offline_metrics": r"precision|recall|auc|ndcg",
    "online_metrics": r"ctr|click-through|online metric", "ab_testing": r"a/b|experiment",
    "serving": r"serving|serve|deploy", "optimization": r"cache|quantiz|distill|latency optimi",
    "drift": r"drift|shift", "retraining": r"retrain", "monitoring": r"monitor|alert|dashboard",
}


def prf(gold: list[list[str]], pred: list[list[str]]) -> tuple[float, float, float]:
    tp = fp = fn = 0
    for g, p in zip(gold, pred):
        g, p = set(g), set(p)
        tp, fp, fn = tp + len(g & p), fp + len(p - g), fn + len(g - p)
    P, R = (tp / (tp + fp) if tp + fp else 0.0), (tp / (tp + fn) if tp + fn else 0.0)
    return P, R, (2 * P * R / (P + R) if P + R else 0.0)


def keyword_baseline(text: str, phase: str | None = None) -> list[str]:
    """The signals whose obvious words occur in the text (the phase is not used)."""
    return [s for s in SIGNALS if re.search(KEYWORDS[s], text, re.I)]


def detection(rows: list[dict]) -> None:
    detector = SignalDetector(get_encoder())
    halves = by_half(rows, lambda r: r["case"], lambda r: r["text"])
    print(f"signal detection on {len(rows)} messages ({DATA.relative_to(ROOT)}): "
          f"{len(halves['tune'])} tune, {len(halves['heldout'])} held-out (split by case)")
    print(f"  {'':18}" + "".join(f"{h:>18}" for h in (*HALVES, "all")))
    print(f"  {'':18}" + f"{'P':>6}{'R':>6}{'F1':>6}" * 3)
    for name, detect in (("keyword baseline", keyword_baseline),
                         ("mlsd-bot detector", lambda t, p: detector.detect(t, p).signals)):
        cells = []
        for part in (halves["tune"], halves["heldout"], rows):
            pred = [detect(r["text"], r["phase"]) for r in part]
            cells.append(prf([r["signals"] for r in part], pred))
        print(f"  {name:18}" + "".join(f"{P:6.2f}{R:6.2f}{F:6.2f}" for P, R, F in cells))


def script_for(rows: list[dict], case: str) -> list[str]:
    """An interview for `case`: every message of the set, phase by phase, /next in between."""
    out = []
    for phase in PHASES:
        out += [r["text"] for r in rows if r["phase"] == phase][:12] + ["/next"]
    return out[:-1] + ["/end"]


def engine_timing(rows: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"MLSD_DATA_DIR": tmp})
        clock = [0.0]
        deps = build_deps(settings, voice="offline", clock=lambda: clock[0])
        times = []
        for case in sorted(deps.cases):
            iv = Interview.new(deps, case)
            list(iv.open())
            for text in script_for(rows, case):
                if iv.finished:
                    break
                clock[0] += 20
                t0 = time.perf_counter()
                list(iv.send(text))
                times.append((time.perf_counter() - t0) * 1000)
    q = statistics.quantiles(times, n=100)
    print(f"engine time per turn, offline voice, {len(times)} turns over {len(deps.cases)} interviews:"
          f" p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms")


def main() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    detection(rows)
    grading_error()  # bench/personas.py: expert-graded interviews, tune and held-out
    critique_figures()  # bench/critiques.py: mistakes and look-alikes, tune and held-out
    critique_figures(data=WIDE)  # ... and the wider blind set, split by row within the tune cases
    engine_timing(rows)


if __name__ == "__main__":
    main()
