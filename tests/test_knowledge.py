"""Knowledge notes: parsing, chunk metadata, chunk sizes, and the one-line errors for malformed notes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from mlsd_bot import tokens
from mlsd_bot.config import PROJECT_ROOT
from mlsd_bot.contract import CONTRACT_CASES, PHASES
from mlsd_bot.embeddings import MAX_TOKENS, TOKENIZER_PATH
from mlsd_bot.errors import NoteError
from mlsd_bot.knowledge import CHUNK_TOKENS, REQUIRED_FACTS, chunk_note, load_notes, parse_note

REAL_KNOWLEDGE = PROJECT_ROOT / "knowledge"


def _words(text: str) -> str:
    """Whitespace-insensitive form: the splitter re-joins lines, so compare word sequences."""
    return " ".join(text.split())


def _piece(chunk) -> str:
    """The chunk text without the 'Title › Heading' line the chunker prepends."""
    return chunk.text.split("\n", 1)[1]


def _sections(body: str) -> dict[str, str]:
    """A case note body split into {phase: section text} along its '## ' headings."""
    parts = re.split(r"^## +(.+?)\s*$", body, flags=re.M)[1:]
    return {h.lower(): text for h, text in zip(parts[::2], parts[1::2])}


@pytest.fixture(scope="module")
def real_notes():
    """Every note of the real knowledge base, parsed once for this module."""
    return load_notes(REAL_KNOWLEDGE)


# --- well-formed notes ------------------------------------------------------------

def test_framework_chunks_carry_phase_source_heading_and_no_case(kb_dir: Path) -> None:
    note = parse_note(kb_dir / "framework" / "monitoring.md", kb_dir)
    assert (note.kind, note.id, note.phase, note.source) == ("framework", "monitoring", "monitoring", "framework/monitoring.md")
    chunks = chunk_note(note)
    assert {c.heading for c in chunks} == {"Drift", "Retraining"}
    for i, c in enumerate(chunks):
        assert (c.id, c.source, c.case, c.phase) == (f"framework/monitoring.md#{i}", note.source, None, "monitoring")
        assert c.text.startswith(f"{note.title} › {c.heading}\n")
    drift = next(c for c in chunks if c.heading == "Drift")
    assert "population stability index" in drift.text
    assert drift.citation == "framework/monitoring.md#drift"


def test_case_chunks_carry_case_and_the_phase_of_their_section(kb_dir: Path) -> None:
    path = kb_dir / "case_studies" / "toy_feed.md"
    note = parse_note(path, kb_dir)
    assert (note.kind, note.id, note.problem) == ("case", "toy_feed", "Design the ranking of a toy social feed.")
    chunks = chunk_note(note)
    assert [c.phase for c in chunks if c.heading.count("›") == 0] == list(PHASES)
    sections = _sections(note.body)
    for c in chunks:
        assert (c.case, c.source) == ("toy_feed", "case_studies/toy_feed.md")
        assert c.heading.split(" › ")[0].lower() == c.phase
        assert _words(_piece(c)) in _words(sections[c.phase])  # the text really comes from that section
        assert c.citation == f"case_studies/toy_feed.md#{c.phase}"
    sub = [c for c in chunks if c.heading == "Data › Sampling"]
    assert len(sub) == 1 and sub[0].phase == "data" and "Downsample impressions" in sub[0].text


def test_note_digest_changes_with_its_text(kb_dir: Path) -> None:
    path = kb_dir / "framework" / "clarify.md"
    before = parse_note(path, kb_dir).digest
    path.write_text(path.read_text() + "\nAsk about the label delay.\n")
    assert parse_note(path, kb_dir).digest != before


def test_every_real_note_parses_and_every_case_covers_all_phases(real_notes) -> None:
    framework = {n.phase for n in real_notes if n.kind == "framework"}
    assert framework == set(PHASES)
    cases = [n for n in real_notes if n.kind == "case"]
    assert set(CONTRACT_CASES) <= {n.id for n in cases}
    for note in cases:
        assert note.problem and note.title
        chunks = chunk_note(note)
        assert {c.case for c in chunks} == {note.id}
        assert {c.phase for c in chunks} == set(PHASES), note.source


def test_every_real_case_opens_with_facts_the_interviewer_can_reveal(real_notes) -> None:
    """The parser accepts a case without Facts; the real knowledge base may not ship one."""
    cases = [n for n in real_notes if n.kind == "case"]
    assert cases
    for note in cases:
        headings = re.findall(r"^## +(.+?)\s*$", note.body, flags=re.M)
        assert headings[:2] == ["Facts", "Clarify"], note.source
        topics = [t for t, _ in note.facts]
        assert set(REQUIRED_FACTS) <= set(topics), note.source
        assert len(topics) == len(set(topics)), f"{note.source}: a topic is listed twice"
        assert 6 <= len(topics) <= 12, note.source
        facts = dict(note.facts)
        for topic in ("scale", "latency"):  # these answers are numbers, not "it depends"
            assert re.search(r"\d", facts[topic]), f"{note.source}: {topic} fact has no number"
        cited = [c for c in chunk_note(note) if c.heading == "Facts"]
        assert cited and {c.citation for c in cited} == {f"{note.source}#facts"}
        assert {c.phase for c in cited} == {"clarify"}


def test_real_chunk_sizes_stay_within_the_limits(real_notes) -> None:
    """Each piece fits CHUNK_TOKENS, and the whole chunk fits MiniLM's window, so nothing is truncated."""
    wordpieces = Tokenizer.from_file(str(TOKENIZER_PATH))
    wordpieces.no_truncation()
    wordpieces.no_padding()
    chunks = [c for n in real_notes for c in chunk_note(n)]
    assert len(chunks) > 100
    assert len({c.id for c in chunks}) == len(chunks)
    for c in chunks:
        assert 0 < tokens.count(_piece(c)) <= CHUNK_TOKENS, c.id
        assert len(wordpieces.encode(c.text).ids) <= MAX_TOKENS, c.id


# --- malformed notes --------------------------------------------------------------

# name -> (note to break, how to break it, what the error must say). Each variant
# starts from a good fixture note and differs in one thing only.
MALFORMED = {
    "bad_yaml": ("case_studies/toy_blur.md", lambda t: t.replace("title: Toy plate blurring", "title: [unclosed"),
                 "front matter is not valid YAML"),
    "no_front_matter": ("case_studies/toy_blur.md", lambda t: t.split("---\n", 2)[2], "missing front matter"),
    "unclosed_front_matter": ("case_studies/toy_blur.md", lambda t: t.replace("\n---\n", "\n", 1),
                              "front matter is not closed"),
    "unknown_kind": ("case_studies/toy_blur.md", lambda t: t.replace("kind: case", "kind: recipe"),
                     "kind must be 'framework' or 'case'"),
    "unknown_phase_heading": ("case_studies/toy_blur.md", lambda t: t.replace("## Serving", "## Deployment"),
                              "unknown phase heading '## deployment'"),
    "missing_section": ("case_studies/toy_blur.md", lambda t: t[: t.index("## Monitoring")],
                        "missing phase section(s): monitoring"),
    "sections_out_of_order": ("case_studies/toy_blur.md",
                              lambda t: t.replace("## Data", "## TMP").replace("## Model", "## Data").replace("## TMP", "## Model"),
                              "out of order"),
    "empty_section": ("case_studies/toy_blur.md",
                      lambda t: re.sub(r"## Clarify\n\n.*?\n\n", "## Clarify\n\n", t, flags=re.S), "'## Clarify' is empty"),
    "text_before_first_heading": ("case_studies/toy_blur.md", lambda t: t.replace("## Clarify", "Intro.\n\n## Clarify"),
                                  "text before the first"),
    "id_not_file_name": ("case_studies/toy_blur.md", lambda t: t.replace("id: toy_blur", "id: toy_other"),
                         "must match its file name"),
    "missing_problem": ("case_studies/toy_blur.md", lambda t: re.sub(r"problem: .*\n", "", t),
                        "needs a non-empty 'problem'"),
    "framework_unknown_phase": ("framework/clarify.md", lambda t: t.replace("phase: clarify", "phase: deploy"),
                                "unknown phase 'deploy'"),
    "framework_without_text": ("framework/clarify.md", lambda t: t[: t.index("---\n", 4) + 4], "no text to index"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_note_raises_note_error_naming_the_file(kb_dir: Path, name: str) -> None:
    source, breaks, problem = MALFORMED[name]
    path = kb_dir / source
    path.write_text(breaks(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(NoteError) as err:
        load_notes(kb_dir)
    assert err.value.path == source
    assert problem in err.value.problem
    message = str(err.value)
    assert message.startswith(f"{source}: ") and "\n" not in message


def test_duplicate_case_id_names_both_files(kb_dir: Path) -> None:
    extra = kb_dir / "case_studies" / "more" / "toy_feed.md"
    extra.parent.mkdir()
    extra.write_text((kb_dir / "case_studies" / "toy_feed.md").read_text())
    with pytest.raises(NoteError) as err:
        load_notes(kb_dir)
    assert "case_studies/toy_feed.md" in str(err.value) and "case_studies/more/toy_feed.md" in str(err.value)


def test_missing_knowledge_folder_is_a_note_error(tmp_path: Path) -> None:
    with pytest.raises(NoteError, match="knowledge folder not found"):
        load_notes(tmp_path / "nowhere")


def test_readme_is_not_a_note(kb_dir: Path) -> None:
    (kb_dir / "README.md").write_text("# Notes\nNo front matter here.\n")
    assert len(load_notes(kb_dir)) == 4
