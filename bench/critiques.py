"""Critique judgment on our own labeled messages (bench/data/critiques.jsonl), tuned vs held-out cases.

Each item is its own short interview, as ../shared/eval/critiques.py runs them: /next up to
the item's phase, the message, and the turn that answers it is judged. A mistake is
challenged on point when that turn is a `critique` naming one of the item's `about`
words; a correct answer raises a false alarm when it gets such a critique.
usage: python bench/critiques.py [--split tune|heldout|all] [--show N] [--data PATH]
(--data scores another labeled file of the same shape, e.g. bench/data/critiques_blind.jsonl.)

Rows are split by case (bench/split.yaml) unless they carry a `half` of their own, as
bench/data/critiques_wide.jsonl does: there the tune cases' rows alternate between a tune and a
held-out half, so its held-out figure comes in two parts: unseen messages on cases whose rows were
tuned on (the situation of the shared evaluation sets), and cases never tuned on.
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
from mlsd_bot.contract import PHASES  # noqa: E402
from mlsd_bot.interview import Interview, build_deps  # noqa: E402


def judge(deps, item: dict) -> tuple[bool, dict]:
    iv = Interview.new(deps, item["case"])
    list(iv.open())
    for _ in range(PHASES.index(item["phase"])):
        list(iv.send("/next"))
    list(iv.send(item["text"]))
    t = iv.turn_json(iv.last_turn)
    named = t["action"] == "critique" and any(k.lower() in t["text"].lower() for k in item["about"])
    return named, t


def score(deps, items: list[dict], show: int = 0) -> tuple[float, float]:
    hits = alarms = n_m = n_c = 0
    shown = 0
    for item in items:
        named, t = judge(deps, item)
        if item["mistake"]:
            n_m += 1
            hits += named
        else:
            n_c += 1
            alarms += named
        if show and shown < show and named != item["mistake"]:
            shown += 1
            kind = "missed" if item["mistake"] else "false alarm"
            print(f"  {kind} [{item.get('pitfall') or item['about'][0]}] {item['case']}/{item['phase']}: {item['text'][:90]!r}\n"
                  f"     -> {t['action']}: {t['text'][:110]!r}")
    return hits / max(n_m, 1), alarms / max(n_c, 1)


DEFAULT_DATA = ROOT / "bench" / "data" / "critiques.jsonl"
WIDE = ROOT / "bench" / "data" / "critiques_wide.jsonl"  # written blind by six writers; rows carry their half


def load_items(path: Path) -> list[dict]:
    """The labeled messages of one JSONL file; a missing file or a bad line exits with a one-line error."""
    if not path.is_file():
        sys.exit(f"critiques: no such data file: {path}")
    items = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            sys.exit(f"critiques: {path}:{n}: not JSON ({e.msg})")
        missing = [k for k in ("case", "phase", "text", "mistake", "about") if k not in item]
        if missing:
            sys.exit(f"critiques: {path}:{n}: missing {', '.join(missing)}")
        items.append(item)
    return items


def critique_figures(split_name: str = "all", show: int = 0, data: Path = DEFAULT_DATA) -> None:
    """Print recall and false alarms of the critiques, tune and held-out cases side by side."""
    split = yaml.safe_load((ROOT / "bench" / "split.yaml").read_text())
    items = load_items(data)
    deps = build_deps(load_settings(), voice="offline")
    for name, part in parts(items, split, split_name):
        recall, false = score(deps, part, show)
        print(f"critiques ({name}, {len(part)} messages): recall {recall:.2f}, false alarms {false:.2f}")


def parts(items: list[dict], split: dict, split_name: str) -> list[tuple[str, list[dict]]]:
    """The rows of each half to report: by case, or by each row's own `half` where rows carry one."""
    names = ["tune", "heldout"] if split_name == "all" else [split_name]
    if not any("half" in i for i in items):
        return [(n, [i for i in items if i["case"] in split[n]]) for n in names]
    out = []
    for n in names:
        rows = [i for i in items if i.get("half") == n]
        if n == "heldout":  # unseen rows of tuned cases, then cases never tuned on
            out.append(("heldout rows of tune cases", [i for i in rows if i["case"] in split["tune"]]))
            out.append(("heldout cases", [i for i in rows if i["case"] not in split["tune"]]))
        else:
            out.append((n, rows))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["tune", "heldout", "all"], default="all")
    ap.add_argument("--show", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labeled JSONL to score (default: %(default)s)")
    args = ap.parse_args()
    critique_figures(args.split, args.show, args.data)


if __name__ == "__main__":
    main()
