"""Prompt files from `prompts/`, rendered with Jinja's StrictUndefined.

A missing variable raises instead of leaving a hole in what the candidate
reads. Variants are picked with a stable seed, so a session replays the same
way and two sessions still sound different.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import jinja2
import yaml

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
# Each phrasing is compiled once, not on every turn (compiling was ~10% of a turn's CPU).
_template = functools.lru_cache(maxsize=4096)(_env.from_string)


def mid_sentence(label: str) -> str:
    """A title used inside a sentence: "Business goal" -> "business goal", but "ML objective" stays."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def pick(options: list[str], seed: str) -> str:
    """A stable choice among variants for `seed`."""
    return options[int(hashlib.sha1(seed.encode()).hexdigest(), 16) % len(options)]


class Prompts:
    """offline.yaml (turn phrasings), questions.yaml (per signal), llm/*.j2 (LLM messages)."""

    def __init__(self, root: Path):
        self.root = root
        self.offline = yaml.safe_load((root / "offline.yaml").read_text(encoding="utf-8"))
        self.questions = yaml.safe_load((root / "questions.yaml").read_text(encoding="utf-8"))
        self._llm = jinja2.Environment(loader=jinja2.FileSystemLoader(root / "llm"),
                                       undefined=jinja2.StrictUndefined, autoescape=False)

    def options(self, slot: str) -> list[str]:
        """The variants of an offline slot; `slot` may be nested as 'phase_open.data'."""
        options = self.offline
        for part in slot.split("."):
            options = options[part]
        return options

    def say(self, slot: str, seed: str, **vars: Any) -> str:
        """Render one variant of an offline slot."""
        return _template(pick(self.options(slot), f"{seed}:{slot}")).render(**vars).strip()

    def say_unused(self, slot: str, seed: str, used: list[str], **vars: Any) -> str | None:
        """Like `say`, but only among variants whose rendered text is not in `used`; None when none is left."""
        rendered = (_template(o).render(**vars).strip() for o in self.options(slot))
        fresh = [t for t in rendered if t not in used]
        return pick(fresh, f"{seed}:{slot}") if fresh else None

    def question(self, signal: str, kind: str, seed: str) -> str:
        """kind: ask | deep | hint."""
        return pick(self.questions[signal][kind], f"{seed}:{signal}:{kind}")

    def llm(self, name: str, **vars: Any) -> str:
        return self._llm.get_template(name).render(**vars).strip()
