"""The `mlsd-bot` command line (commands and JSON shapes per ../shared/CONTRACT.md).

This is a boundary: MlsdError becomes one line on stderr and exit code 1, bad
arguments exit 2 with one line; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

from .config import Settings, load_settings
from .contract import PHASES
from .errors import BadInputError, MlsdError, UnknownIdError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(2, f"mlsd-bot: error: {message} (see `mlsd-bot {self.prog.split()[-1]} --help`)\n")


def _emit(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def read_jsonl(path: str, required: str) -> Iterator[dict]:
    """Yield the objects of a JSONL file; a bad line is a one-line error naming it."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{path}: no such file")
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get(required), str):
            raise BadInputError(f"{path}:{n}: each line needs a string field {required!r}")
        yield obj


def _check_case(case: str | None, known: list[str]) -> None:
    if case is not None and case not in known:
        raise UnknownIdError("case", case, known)


def _check_phase(phase: str | None) -> None:
    if phase is not None and phase not in PHASES:
        raise UnknownIdError("phase", phase, list(PHASES))


# --- commands -------------------------------------------------------------------

def cmd_ingest(args, settings: Settings) -> None:
    from .store import ingest

    print(ingest(settings).summary(), file=sys.stderr)


def cmd_cases(args, settings: Settings) -> None:
    from .cases import load_cases

    cases = load_cases(settings.knowledge_dir)
    if args.json:
        _emit([{"id": c.id, "title": c.title, "problem": c.problem} for c in cases])
    else:
        for c in cases:
            print(f"{c.id:24} {c.title}")


def _search_inputs(args, cases: list[str]) -> Iterator[dict]:
    if (args.query is None) == (args.file is None):
        raise BadInputError("give a QUERY or --file Q.jsonl (exactly one)")
    items = read_jsonl(args.file, "query") if args.file else [{"query": args.query}]
    for item in items:
        item.setdefault("case", args.case)
        item.setdefault("phase", args.phase)
        _check_case(item["case"], cases)
        _check_phase(item["phase"])
        yield item


def cmd_search(args, settings: Settings) -> None:
    from .cases import load_cases
    from .retrieval import Retriever
    from .store import open_index

    if args.k < 1:
        raise BadInputError("-k must be at least 1")
    case_ids = [c.id for c in load_cases(settings.knowledge_dir)]
    items = list(_search_inputs(args, case_ids))  # validate all before any work
    retriever = Retriever(open_index(settings))
    for item in items:
        hits = [h.to_json() for h in retriever.search(item["query"], item["case"], item["phase"], args.k)]
        if args.file:
            _emit({"query": item["query"], "hits": hits})
        elif args.json:
            _emit(hits)
        else:
            for h in hits:
                print(f"{h['score']:.3f}  {h['id']}\n       {h['text'][:160]!r}")


# --- wiring ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlsd-bot", description="Mock interviewer for ML system design interviews.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("ingest", help="build or refresh the vector store from knowledge/").set_defaults(fn=cmd_ingest)
    c = sub.add_parser("cases", help="list the case studies")
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=cmd_cases)
    s = sub.add_parser("search", help="search the knowledge base")
    s.add_argument("query", nargs="?")
    s.add_argument("--file", help="JSONL of {query, case?, phase?}")
    s.add_argument("--case")
    s.add_argument("--phase")
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_search)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        args.fn(args, settings)
    except MlsdError as e:
        print(f"mlsd-bot: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mlsd-bot: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
