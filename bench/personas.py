"""Grade calibration on our own expert-graded interviews (bench/data/personas), tune vs held-out cases.

Each file is a header {"case", "level", "expert_score", "expert_verdict", ...} and candidate
messages; the interview is replayed in-process with a simulated clock (60 s a message, as
`mlsd-bot replay` does) and its report compared with the expert's grade: mean absolute
error, Spearman rank correlation, and how many land on the expert's side of hire / no hire.
usage: python bench/personas.py [--show]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlsd_bot.config import load_settings  # noqa: E402
from mlsd_bot.interview import Interview, build_deps  # noqa: E402

HIRE = {"strong_hire", "hire", "lean_hire"}
STEP = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def replay(deps, clock: Clock, path: Path) -> tuple[dict, Interview]:
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    head, msgs = lines[0], lines[1:]
    clock.now = 0.0
    iv = Interview.new(deps, head["case"], level=head.get("level", "senior"))
    list(iv.open())
    for m in msgs:
        if iv.finished:
            break
        clock.now += STEP
        list(iv.send(m["text"]))
    if not iv.finished:
        list(iv.end())
    return head, iv


def ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else 0.0


def summary(rows: list[tuple[dict, int, str]]) -> str:
    tool = [s for _, s, _ in rows]
    expert = [h["expert_score"] for h, _, _ in rows]
    mae = sum(abs(a - b) for a, b in zip(tool, expert)) / len(rows)
    sides = sum((v in HIRE) == (h["expert_verdict"] in HIRE) for h, _, v in rows)
    return f"MAE {mae:.1f}, Spearman {spearman(tool, expert):.2f}, side right {sides}/{len(rows)}"


def grading_error(show: bool = False) -> None:
    """Print the grading error against the expert grades, tune and held-out interviews side by side."""
    split = yaml.safe_load((ROOT / "bench" / "split.yaml").read_text())
    clock = Clock()
    deps = build_deps(load_settings(), voice="offline", clock=clock)
    for name in ("tune", "heldout"):
        rows = []
        for path in sorted((ROOT / "bench" / "data" / "personas").glob("*.jsonl")):
            if path.name.split(".")[0] not in split[name]:
                continue
            head, iv = replay(deps, clock, path)
            r = iv.report()
            rows.append((head, r.overall.score, r.overall.verdict))
            if show:
                print(f"  {path.name}: tool {r.overall.score} | expert {head['expert_score']}")
        print(f"personas ({name}, {len(rows)} interviews): {summary(rows)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", action="store_true", help="one line per interview")
    grading_error(ap.parse_args().show)


if __name__ == "__main__":
    main()
