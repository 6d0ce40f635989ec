"""The `mlsd-bot` command line (commands and JSON shapes per ../shared/CONTRACT.md).

This is a boundary: MlsdError becomes one line on stderr and exit code 1, bad
arguments exit 2 with one line; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Iterator

from .config import Settings, load_settings
from .contract import PHASES
from .errors import BadInputError, MlsdError, UnknownIdError
from .textsafe import clean


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        message = " ".join(clean(message).split())  # it may quote raw arguments: no escape codes or line breaks
        self.exit(2, f"mlsd-bot: error: {message} (see `mlsd-bot {self.prog.split()[-1]} --help`)\n")


def _emit(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def read_jsonl(path: str, required: str) -> Iterator[dict]:
    """Yield the objects of a JSONL file, their strings cleaned; a bad line is a one-line error naming it."""
    for _, obj in numbered_jsonl(path, required):
        yield obj


def numbered_jsonl(path: str, required: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file; see read_jsonl."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{path}: no such file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise BadInputError(f"{path}: cannot be read ({e.strerror})") from None
    # Split the bytes, not the text: str.splitlines would also cut at U+2028 inside a JSON string.
    for n, raw in enumerate(data.splitlines(), 1):
        line = _decode_line(raw, path, n)
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        except RecursionError:
            raise BadInputError(f"{path}:{n}: JSON nested too deeply") from None
        if not isinstance(obj, dict) or not isinstance(obj.get(required), str):
            raise BadInputError(f"{path}:{n}: each line needs a string field {required!r}")
        # Strings in JSON may spell lone surrogates (\ud800) or control characters: clean them here.
        yield n, {clean(k): clean(v) if isinstance(v, str) else v for k, v in obj.items()}


def _decode_line(raw: bytes, path: str, n: int) -> str:
    try:
        return raw.decode("utf-8-sig" if n == 1 else "utf-8")
    except UnicodeDecodeError as e:
        raise BadInputError(f"{path}:{n}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}) - "
                            "save the file as UTF-8") from None


def _check_case(case: str | None, known: list[str]) -> None:
    if case is not None and case not in known:
        raise UnknownIdError("case", case, known)


def _check_phase(phase: str | None) -> None:
    if phase is not None and phase not in PHASES:
        raise UnknownIdError("phase", phase, list(PHASES))


# --- commands -------------------------------------------------------------------

def cmd_ingest(args, settings: Settings) -> None:
    from .store import ingest, refresh_shipped_vectors

    if args.refresh_vectors:  # first, so the index below is built from the fresh file
        written, encoded = refresh_shipped_vectors(settings)
        print(f"shipped vectors: {written} texts written, {encoded} newly encoded", file=sys.stderr)
    print(ingest(settings, rebuild=args.rebuild).summary(), file=sys.stderr)


def cmd_cases(args, settings: Settings) -> None:
    from .cases import load_cases

    cases = load_cases(settings.knowledge_dir)
    if args.json:
        _emit([{"id": c.id, "title": c.title, "problem": c.problem} for c in cases])
    else:
        for c in cases:
            print(f"{c.id:24} {c.title}")


def _search_inputs(args) -> list[dict]:
    """Every query with its filters; the phase is checked here, the case against the index."""
    if (args.query is None) == (args.file is None):
        raise BadInputError("give a QUERY or --file Q.jsonl (exactly one)")
    items = list(read_jsonl(args.file, "query")) if args.file else [{"query": args.query}]
    for item in items:
        item.setdefault("case", args.case)
        item.setdefault("phase", args.phase)
        _check_phase(item["phase"])
    return items


def cmd_search(args, settings: Settings) -> None:
    if args.k < 1:
        raise BadInputError("-k must be at least 1")
    items = _search_inputs(args)  # bad input fails before the index is opened (or even imported)
    from .retrieval import Retriever
    from .store import open_index

    retriever = Retriever(open_index(settings))
    case_ids = sorted({c.case for c in retriever.chunks if c.case})
    for item in items:  # all checked before any result is printed
        _check_case(item["case"], case_ids)
    for item in items:
        hits = [h.to_json() for h in retriever.search(item["query"], item["case"], item["phase"], args.k)]
        if args.file:
            _emit({"query": item["query"], "hits": hits})
        elif args.json:
            _emit(hits)
        else:
            for h in hits:
                print(f"{h['score']:.3f}  {h['id']}\n       {h['text'][:160]!r}")


def cmd_detect(args, settings: Settings) -> None:
    if (args.text is None) == (args.file is None):
        raise BadInputError("give a TEXT or --file M.jsonl (exactly one)")
    _check_phase(args.phase)
    items = list(read_jsonl(args.file, "text")) if args.file else [{"text": args.text}]
    for item in items:
        _check_phase(item.get("phase"))
    _check_detect_cases([args.case] + [item.get("case") for item in items], settings)
    from .embeddings import get_encoder
    from .signals import SignalDetector

    detector = SignalDetector(get_encoder(), cache_dir=settings.data_dir / "cache")
    for item in items:
        signals = detector.detect(item["text"], item.get("phase") or args.phase).signals
        if args.file:
            _emit({"text": item["text"], "signals": signals})
        elif args.json:
            _emit({"signals": signals})
        else:
            print(" ".join(signals) or "(no signal)")


def _check_detect_cases(cases: list[str | None], settings: Settings) -> None:
    """`--case` (and a line's "case") is context only (CONTRACT.md): detection does not depend on it,
    but a case id that does not exist is still a bad argument."""
    given = [c for c in cases if c is not None]
    if given:
        from .cases import load_cases

        known = [c.id for c in load_cases(settings.knowledge_dir)]
        for case in given:
            _check_case(case, known)


class SimClock:
    """Replay time: each candidate message takes `step` seconds, as in a real round."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now


def cmd_replay(args, settings: Settings) -> None:
    from .interview import Interview, build_deps

    messages = [(n, m["text"]) for n, m in numbered_jsonl(args.file, "text")]
    clock = SimClock(args.seconds_per_message)
    deps = build_deps(settings, voice=args.voice, clock=clock)
    iv = Interview.new(deps, args.case, level=args.level, budget_minutes=args.minutes)
    out = [_consume(iv, iv.open())]
    for n, text in messages:
        if iv.finished:
            break
        clock.now += clock.step
        try:
            out.append(_consume(iv, iv.send(text)))
        except BadInputError as e:  # an empty or over-long message: name its line
            raise BadInputError(f"{args.file}:{n}: {e}") from None
    if not iv.finished:
        out.append(_consume(iv, iv.end()))
    report = iv.report()
    for turn in out:
        _emit(turn) if args.json else print(f"[{turn['phase']}/{turn['action']}] {turn['text']}\n")
    _emit(report.model_dump(mode="json")) if args.json else print(iv.report_markdown())
    try:  # the result is printed first: a store that cannot be written costs the copy, not the run
        _save(settings, iv, report)
    except MlsdError as e:
        print(f"mlsd-bot: warning: the interview was not saved: {_one_line(e)}", file=sys.stderr)


def _consume(iv, stream) -> dict:
    for _ in stream:
        pass
    return iv.turn_json(iv.last_turn)


def _save(settings: Settings, iv, report=None) -> None:
    from .sessions import open_store

    open_store(settings).save(iv.state, report)


def cmd_chat(args, settings: Settings) -> None:
    from .chat import run_chat

    run_chat(settings, case_id=args.case, level=args.level, minutes=args.minutes, voice=args.voice,
             resume=args.resume)


def cmd_report(args, settings: Settings) -> None:
    from .report import to_html, to_markdown
    from .sessions import open_store

    store = open_store(settings)
    sid = args.session or next((s.id for s in store.list() if s.finished), None)
    if sid is None:
        raise BadInputError("no finished interview saved yet - run `mlsd-bot chat` first")
    report = store.report(sid)
    if report is None:
        raise BadInputError(f"interview {sid} has no report yet - resume it with `mlsd-bot chat --resume {sid}`")
    if args.format == "json":  # the contract's report object, nothing else
        print(report.model_dump_json(indent=2))
        return
    # The documents a candidate keeps: the report with the whole conversation under it, as the app's downloads.
    turns = store.load(sid).turns
    print((to_html if args.format == "html" else to_markdown)(report, turns))


def cmd_sessions(args, settings: Settings) -> None:
    from .sessions import open_store

    sessions = open_store(settings).list()
    if not sessions:
        print("no saved interviews yet - start one with `mlsd-bot chat` or `make run`")
    for s in sessions:
        state = "done" if s.finished else f"in {s.phase}"
        print(f"{s.id}  {s.case_id:24} {s.level:7} {state:14} {'' if s.score is None else s.score}")


def cmd_add_user(args, settings: Settings) -> None:
    """Add a user to the MLSD_USERS file (or --file); the password is read without echo, or from stdin."""
    import getpass

    from .users import add_user

    path = args.file or settings.users_file
    if path is None:
        raise BadInputError("set MLSD_USERS to the users file, or pass --file PATH")
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise BadInputError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    add_user(Path(path), args.name, password)
    print(f"mlsd-bot: {args.name} can now log in (users file {path})", file=sys.stderr)


# --- wiring ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlsd-bot", description="Mock interviewer for ML system design interviews.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    i = sub.add_parser("ingest", help="build or refresh the vector store from knowledge/")
    i.add_argument("--rebuild", action="store_true", help="discard the index (e.g. a damaged one) and build it anew")
    i.add_argument("--refresh-vectors", action="store_true",
                   help="also rewrite the shipped vectors (mlsd_bot/data/embedding/*vectors.npz) for the current "
                        "notes and product data; run after editing them (`make vectors`)")
    i.set_defaults(fn=cmd_ingest)
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
    d = sub.add_parser("detect", help="which signals a candidate message carries")
    d.add_argument("text", nargs="?")
    d.add_argument("--file", help="JSONL of {text, phase?, case?}")
    d.add_argument("--phase", help="where the interview is: a soft prior towards that phase's signals")
    d.add_argument("--case", help="the case being interviewed: context only (checked against the case ids); "
                                  "signals do not depend on it")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=cmd_detect)
    r = sub.add_parser("replay", help="run a whole interview from a JSONL file of candidate messages")
    r.add_argument("file")
    _interview_args(r, case_required=True)
    r.add_argument("--seconds-per-message", type=_seconds, default=60.0, help="simulated time per message")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=cmd_replay)
    ch = sub.add_parser("chat", help="an interactive interview in the terminal")
    _interview_args(ch, case_required=False)
    ch.add_argument("--resume", metavar="SESSION", help="continue a saved, unfinished interview")
    ch.set_defaults(fn=cmd_chat)
    rp = sub.add_parser("report", help="print the report of a saved interview")
    rp.add_argument("session", nargs="?", help="session id (default: the latest finished)")
    rp.add_argument("--format", choices=["markdown", "json", "html"], default="markdown")
    rp.set_defaults(fn=cmd_report)
    sub.add_parser("sessions", help="list saved interviews").set_defaults(fn=cmd_sessions)
    u = sub.add_parser("add-user", help="add a login to the MLSD_USERS file (password from the terminal or stdin)")
    u.add_argument("name")
    u.add_argument("--file", help="the users file (default: MLSD_USERS)")
    u.set_defaults(fn=cmd_add_user)
    return p


MIN_MINUTES, MAX_MINUTES = 5, 180  # what InterviewState accepts


def _minutes(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--minutes must be a whole number, got {raw!r}") from None
    if not MIN_MINUTES <= value <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"--minutes must be {MIN_MINUTES} to {MAX_MINUTES}, got {value}")
    return value


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"--seconds-per-message must be a number of seconds (0 to 86399), got {raw!r}")
    return value


def _interview_args(p: argparse.ArgumentParser, case_required: bool) -> None:
    p.add_argument("--case", required=case_required, help="case id (see `mlsd-bot cases`)")
    p.add_argument("--level", choices=["mid", "senior", "staff"], default="senior")
    p.add_argument("--minutes", type=_minutes, default=45, help=f"time budget ({MIN_MINUTES}-{MAX_MINUTES})")
    p.add_argument("--voice", choices=["offline", "openai"], help="default: openai when a key or base URL is set")


# Arguments that are file paths keep their exact bytes (a non-UTF-8 name must still open);
# every other argument is text and is cleaned like any input.
PATH_ARGS = {"file"}


def _clean_args(args: argparse.Namespace) -> argparse.Namespace:
    for key, value in vars(args).items():
        if isinstance(value, str) and key not in PATH_ARGS:
            setattr(args, key, clean(value))
    return args


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def crash_line(e: BaseException, data_dir: Path | None) -> str:
    """The one line shown for a bug (not a user error): the traceback goes to a file for the report."""
    where = "its traceback could not be saved"
    try:
        folder = Path(data_dir or tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, prefix="crash-", suffix=".txt", delete=False,
                                         encoding="utf-8", errors="replace") as f:
            traceback.print_exception(e, file=f)
        where = f"details in {f.name}"
    except OSError:
        pass
    return f"mlsd-bot: internal error: {type(e).__name__}: {_one_line(e)[:200]} - {where}; please report it"


def quiet_streams() -> None:
    """A terminal that is not UTF-8 gets '?' for what it cannot show, rather than a crash."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def _attach_resume_id(argv: list[str]) -> list[str]:
    """`--resume ID` as `--resume=ID`: ids saved before they lost '-' may start with one, which
    argparse would otherwise read as an option."""
    out = list(argv)
    for i, a in enumerate(out[:-1]):
        if a == "--resume" and out[i + 1].startswith("-") and out[i + 1] not in ("-h", "--help"):
            out[i:i + 2] = [f"--resume={out[i + 1]}"]
            break
    return out


def main(argv: list[str] | None = None) -> int:
    quiet_streams()
    args = _clean_args(build_parser().parse_args(_attach_resume_id(sys.argv[1:] if argv is None else argv)))
    settings = None
    try:
        settings = load_settings()
        args.fn(args, settings)
    except MlsdError as e:
        print(f"mlsd-bot: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mlsd-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line, with the traceback kept in a file
        print(crash_line(e, settings.data_dir if settings else None), file=sys.stderr)
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
