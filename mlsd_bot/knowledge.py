"""Knowledge notes: parse and validate the markdown under `knowledge/`, split into chunks.

The format is described in knowledge/README.md. Validation is strict because the
interviewer cites these chunks by case and phase: a note with bad front matter,
an unknown phase heading or an unknown case stops ingest with one line.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from .contract import PHASES, SIGNALS
from .errors import NoteError
from .tokens import ENCODING

CHUNK_TOKENS = 200  # MiniLM reads 256 word pieces; 200 BPE tokens stay under that
CHUNK_OVERLAP = 30
CHUNKER_VERSION = "2"  # bump when chunking changes so every note is re-embedded
_HEADING = re.compile(r"^## +(.+?)\s*$", re.M)
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_ANY_HEADING = re.compile(r"^#{1,6} .*$", re.M)
FACTS = "facts"  # the optional first section of a case note: what the interviewer tells when asked
PUSHBACK = "pushback"  # a `### Pushback` sub-section: counterpoints keyed by pitfall id
REQUIRED_FACTS = ("business_objective", "scale", "latency", "labels", "privacy")
_BULLET = re.compile(r"^\s*[-*] +`?([a-z][a-z0-9_]*)`?\s*:\s*(.+?)\s*$")


@dataclass(frozen=True)
class Note:
    id: str
    title: str
    kind: str  # "framework" | "case"
    source: str  # path relative to the knowledge dir, e.g. case_studies/news_feed.md
    body: str
    digest: str
    problem: str | None = None  # cases: the interviewer's opening prompt
    phase: str | None = None  # framework notes: the phase they describe
    optional_signals: tuple[str, ...] = ()  # cases: signals that matter less here
    facts: tuple[tuple[str, str], ...] = ()  # cases: (topic, fact) the interviewer reveals when asked
    pushback: tuple[tuple[str, str, str], ...] = ()  # (pitfall id, phase, counterpoint sentence)


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    case: str | None
    phase: str
    heading: str
    text: str
    digest: str

    @property
    def citation(self) -> str:
        """What the interviewer cites: the note and its section."""
        if self.case:
            return f"{self.source}#{FACTS if self.heading.lower() == FACTS else self.phase}"
        return f"{self.source}#{_slug(self.heading)}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _front_matter(text: str, source: str) -> tuple[dict, str]:
    if not text.startswith("---\n"):
        raise NoteError(source, "missing front matter (the file must start with a '---' line)")
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise NoteError(source, "front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(head)
    except yaml.YAMLError as e:
        raise NoteError(source, f"front matter is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise NoteError(source, "front matter must be a mapping of keys to values")
    return meta, body


def _require(meta: dict, keys: tuple[str, ...], source: str) -> None:
    for key in keys:
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise NoteError(source, f"front matter needs a non-empty '{key}'")


def _check_case_headings(body: str, source: str) -> None:
    if body.strip() and not body.lstrip().startswith("## "):
        raise NoteError(source, "text before the first '## ' phase heading")
    found = [h.strip().lower() for h in _HEADING.findall(body)]
    if found[:1] == [FACTS]:
        found = found[1:]
    for h in found:
        if h not in PHASES:
            raise NoteError(source, f"unknown phase heading '## {h}' (expected Facts or one of: {', '.join(p.title() for p in PHASES)})")
    if found != list(PHASES):
        missing = [p for p in PHASES if p not in found]
        problem = f"missing phase section(s): {', '.join(missing)}" if missing else "phase sections repeated or out of order"
        raise NoteError(source, problem)
    parts = _HEADING.split(body)[1:]  # heading, text, heading, text, ...
    for heading, section in zip(parts[::2], parts[1::2]):
        if not _has_text(section):
            raise NoteError(source, f"phase section '## {heading}' is empty")


def _has_text(markdown: str) -> bool:
    """True when there is text besides headings: a note or section without any yields no chunk."""
    return bool(_ANY_HEADING.sub("", markdown).strip())


def parse_note(path: Path, root: Path) -> Note:
    """Read and validate one note."""
    source = path.relative_to(root).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NoteError(source, "not UTF-8 text") from None
    except OSError as e:
        raise NoteError(source, f"cannot be read ({e.strerror})") from None
    meta, body = _front_matter(text, source)
    _require(meta, ("id", "title", "kind"), source)
    if not _ID.match(meta["id"]):
        raise NoteError(source, f"id {meta['id']!r} must be lower_snake_case")
    digest = hashlib.sha256((CHUNKER_VERSION + text).encode()).hexdigest()
    common = dict(id=meta["id"], title=meta["title"].strip(), source=source, body=body, digest=digest)
    if meta["kind"] == "framework":
        _require(meta, ("phase",), source)
        if meta["phase"] not in PHASES:
            raise NoteError(source, f"unknown phase {meta['phase']!r}")
        if not _has_text(body):
            raise NoteError(source, "the note has no text to index")
        return Note(kind="framework", phase=meta["phase"], pushback=_pushback(body, source, meta["phase"]), **common)
    if meta["kind"] != "case":
        raise NoteError(source, f"kind must be 'framework' or 'case', got {meta['kind']!r}")
    _require(meta, ("problem",), source)
    if path.stem != meta["id"]:
        raise NoteError(source, f"unknown case {meta['id']!r}: a case's id must match its file name")
    _check_case_headings(body, source)
    optional = meta.get("optional_signals") or []
    unknown = [s for s in optional if s not in SIGNALS] if isinstance(optional, list) else [optional]
    if unknown:
        raise NoteError(source, f"optional_signals lists unknown signal(s): {unknown}")
    return Note(kind="case", problem=" ".join(meta["problem"].split()), optional_signals=tuple(optional),
                facts=_facts(body, source), pushback=_pushback(body, source), **common)


def _sections(body: str, level: str) -> list[tuple[str, str]]:
    """(heading, text) for each heading of `level` ("##" or "###"); a section ends at the next heading as high."""
    parts = re.split(rf"^(#{{2,{len(level)}}}) +(.+?)\s*$", body, flags=re.M)[1:]
    return [(h.strip(), t) for mark, h, t in zip(parts[::3], parts[1::3], parts[2::3]) if mark == level]


def _bullets(text: str, source: str, where: str) -> list[tuple[str, str]]:
    """`- key: text` bullets; any other non-blank line is an error (it would be silently unused)."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _BULLET.match(line)
        if not m:
            raise NoteError(source, f"{where}: every line must be a '- key: text' bullet, got {line.strip()[:60]!r}")
        out.append((m.group(1), m.group(2)))
    return out


def _facts(body: str, source: str) -> tuple[tuple[str, str], ...]:
    """The `## Facts` section: `- topic: fact` bullets; topics are signal ids or short snake_case words."""
    section = next((t for h, t in _sections(body, "##") if h.lower() == FACTS), None)
    if section is None:
        return ()
    facts = _bullets(section, source, "## Facts")
    missing = [k for k in REQUIRED_FACTS if k not in {t for t, _ in facts}]
    if missing:
        raise NoteError(source, f"## Facts lacks a fact for: {', '.join(missing)}")
    return tuple(facts)


def _pushback(body: str, source: str, phase: str | None = None) -> tuple[tuple[str, str, str], ...]:
    """`### Pushback` sub-sections: `- pitfall_id: counterpoint` bullets, tagged with their phase."""
    out = []
    for h2, text in [("", body)] if phase else _sections(body, "##"):
        where = phase or h2.lower()
        for h3, sub in _sections(text, "###"):
            if h3.lower() == PUSHBACK:
                out += [(pid, where, sentence) for pid, sentence in _bullets(sub, source, f"{where} › Pushback")]
    return tuple(out)


def read_notes(root: Path) -> tuple[list[Note], list[NoteError]]:
    """Every note under `root` that is valid, and one NoteError (naming the file) per note that is not.

    The interviewer uses this: a broken note takes only itself out of service. A missing
    folder is still an error: there is nothing to serve.
    """
    if not root.is_dir():
        raise NoteError(str(root), "knowledge folder not found (set MLSD_KNOWLEDGE_DIR)")
    notes: list[Note] = []
    errors: list[NoteError] = []
    seen: dict[str, str] = {}
    for path in sorted(root.rglob("*.md")):
        if path.name == "README.md":
            continue
        try:
            note = parse_note(path, root)
        except NoteError as e:
            errors.append(e)
            continue
        key = f"{note.kind}:{note.id}"
        if key in seen:
            errors.append(NoteError(note.source, f"id {note.id!r} is also used by {seen[key]}"))
            continue
        seen[key] = note.source
        notes.append(note)
    return notes, errors


def load_notes(root: Path) -> list[Note]:
    """Every note under `root`, validated; raises the first NoteError (the strict path `ingest` takes)."""
    notes, errors = read_notes(root)
    if errors:
        raise errors[0]
    return notes


def out_of_service(error: NoteError) -> str:
    """The one-line warning for a note that `read_notes` left out."""
    return (f"{error} - this note is out of service (its case cannot be started; search serves its text "
            "from the previous index); fix it and run `mlsd-bot ingest`")


_headers = MarkdownHeaderTextSplitter([("##", "h2"), ("###", "h3")], strip_headers=True)


@functools.cache
def _splitter() -> RecursiveCharacterTextSplitter:
    """Made on first use: it loads the BPE file, which a start with an up-to-date index never needs."""
    return RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name=ENCODING, chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP)


def chunk_note(note: Note) -> list[Chunk]:
    """Split along headings, then by tokens; each chunk knows its case, phase and heading."""
    chunks: list[Chunk] = []
    for section in _headers.split_text(note.body):
        h2, h3 = section.metadata.get("h2", ""), section.metadata.get("h3", "")
        phase = note.phase or h2.strip().lower()
        phase = PHASES[0] if phase == FACTS else phase  # facts are what the candidate clarifies
        heading = " › ".join(h for h in (h2, h3) if h)
        for piece in _splitter().split_text(section.page_content):
            chunks.append(Chunk(
                id=f"{note.source}#{len(chunks)}", source=note.source,
                case=note.id if note.kind == "case" else None, phase=phase, heading=heading,
                text=f"{note.title} › {heading}\n{piece}", digest=note.digest,
            ))
    return chunks
