"""Knowledge notes: parse and validate the markdown under `knowledge/`, split into chunks.

The format is described in knowledge/README.md. Validation is strict because the
interviewer cites these chunks by case and phase: a note with bad front matter,
an unknown phase heading or an unknown case stops ingest with one line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from .contract import PHASES
from .errors import NoteError
from .tokens import ENCODING

CHUNK_TOKENS = 200  # MiniLM reads 256 word pieces; 200 BPE tokens stay under that
CHUNK_OVERLAP = 30
CHUNKER_VERSION = "2"  # bump when chunking changes so every note is re-embedded
_HEADING = re.compile(r"^## +(.+?)\s*$", re.M)
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


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
        return f"{self.source}#{self.phase if self.case else _slug(self.heading)}"


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
    for h in found:
        if h not in PHASES:
            raise NoteError(source, f"unknown phase heading '## {h}' (expected one of: {', '.join(p.title() for p in PHASES)})")
    if found != list(PHASES):
        missing = [p for p in PHASES if p not in found]
        problem = f"missing phase section(s): {', '.join(missing)}" if missing else "phase sections repeated or out of order"
        raise NoteError(source, problem)


def parse_note(path: Path, root: Path) -> Note:
    """Read and validate one note."""
    source = path.relative_to(root).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NoteError(source, "not UTF-8 text") from None
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
        return Note(kind="framework", phase=meta["phase"], **common)
    if meta["kind"] != "case":
        raise NoteError(source, f"kind must be 'framework' or 'case', got {meta['kind']!r}")
    _require(meta, ("problem",), source)
    if path.stem != meta["id"]:
        raise NoteError(source, f"unknown case {meta['id']!r}: a case's id must match its file name")
    _check_case_headings(body, source)
    return Note(kind="case", problem=" ".join(meta["problem"].split()), **common)


def load_notes(root: Path) -> list[Note]:
    """Every note under `root`, validated; raises NoteError at the first bad one."""
    if not root.is_dir():
        raise NoteError(str(root), "knowledge folder not found (set MLSD_KNOWLEDGE_DIR)")
    notes = [parse_note(p, root) for p in sorted(root.rglob("*.md")) if p.name != "README.md"]
    seen: dict[str, str] = {}
    for n in notes:
        key = f"{n.kind}:{n.id}"
        if key in seen:
            raise NoteError(n.source, f"id {n.id!r} is also used by {seen[key]}")
        seen[key] = n.source
    return notes


_headers = MarkdownHeaderTextSplitter([("##", "h2"), ("###", "h3")], strip_headers=True)
_splitter = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
    encoding_name=ENCODING, chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP
)


def chunk_note(note: Note) -> list[Chunk]:
    """Split along headings, then by tokens; each chunk knows its case, phase and heading."""
    chunks: list[Chunk] = []
    for section in _headers.split_text(note.body):
        h2, h3 = section.metadata.get("h2", ""), section.metadata.get("h3", "")
        phase = note.phase or h2.strip().lower()
        heading = " › ".join(h for h in (h2, h3) if h)
        for piece in _splitter.split_text(section.page_content):
            chunks.append(Chunk(
                id=f"{note.source}#{len(chunks)}", source=note.source,
                case=note.id if note.kind == "case" else None, phase=phase, heading=heading,
                text=f"{note.title} › {heading}\n{piece}", digest=note.digest,
            ))
    return chunks
