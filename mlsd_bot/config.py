"""All configuration in one place: env vars (MLSD_*, OPENAI_*) plus CLI overrides.

`load_settings()` is the only function that reads the environment; everything
else receives a `Settings` object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from .errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    knowledge_dir: Path
    prompts_dir: Path
    chroma_url: str | None = None
    voice: str = "offline"  # "offline" or "openai"
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    # repr=False keeps the key out of logs, tracebacks and reports.
    api_key: str | None = field(default=None, repr=False)
    llm_timeout: float = 30.0  # per read (connect, each chunk)
    llm_retries: int = 1
    llm_max_tokens: int = 400  # cap on one reply: sent as max_tokens and enforced on the stream
    llm_deadline: float = 20.0  # seconds for one whole reply, however slowly it trickles
    llm_detect: bool = False  # with the LLM voice, also let the LLM refine signal detection
    host: str = "127.0.0.1"
    port: int = 7860
    auth: tuple[str, str] | None = field(default=None, repr=False)
    users_file: Path | None = None  # MLSD_USERS: name:scrypt-hash lines (mlsd_bot/users.py)
    # MLSD_DATABASE_URL: sessions in PostgreSQL instead of SQLite (several app processes share it).
    # repr=False: the URL may hold a password.
    database_url: str | None = field(default=None, repr=False)

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def sessions_db(self) -> Path:
        return self.data_dir / "sessions.sqlite3"

    def voice_label(self) -> str:
        """Which interviewer voice is active, for humans (never shows the key)."""
        if self.voice == "offline":
            return "offline interviewer (no LLM)"
        return f"LLM {self.model} at {self.base_url or 'api.openai.com'}"

    def with_overrides(self, **kw) -> "Settings":
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _at_least_one(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name} must be a positive number, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")
    return raw in ("1", "true", "yes")


def _auth(raw: str | None) -> tuple[str, str] | None:
    if not raw:
        return None
    user, sep, pw = raw.partition(":")
    if not (sep and user and pw):
        raise ConfigError("MLSD_AUTH must look like user:password")
    return user, pw


def _database_url(raw: str | None) -> str | None:
    """A postgresql:// URL, or None for the embedded SQLite store. Errors never echo the URL (password)."""
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ConfigError("MLSD_DATABASE_URL must start with postgresql:// (unset it to keep sessions in SQLite)")
    return raw


def _voice(env: Mapping[str, str], key: str | None, base_url: str | None) -> str:
    """Explicit MLSD_VOICE wins; otherwise an LLM is used only when one is configured."""
    voice = env.get("MLSD_VOICE", "").strip().lower()
    if voice and voice not in ("offline", "openai"):
        raise ConfigError(f"MLSD_VOICE must be offline or openai, got {voice!r}")
    if voice == "openai" and not (key or base_url):
        raise ConfigError("MLSD_VOICE=openai needs OPENAI_API_KEY or OPENAI_BASE_URL - set one, or use MLSD_VOICE=offline")
    return voice or ("openai" if key or base_url else "offline")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the environment once; callers pass the result down."""
    env = os.environ if env is None else env
    key = env.get("OPENAI_API_KEY") or None
    base_url = env.get("OPENAI_BASE_URL") or None
    data_dir = Path(env.get("MLSD_DATA_DIR") or PROJECT_ROOT / ".mlsd").expanduser()
    return Settings(
        data_dir=data_dir,
        knowledge_dir=Path(env.get("MLSD_KNOWLEDGE_DIR") or PROJECT_ROOT / "knowledge"),
        prompts_dir=Path(env.get("MLSD_PROMPTS_DIR") or PROJECT_ROOT / "prompts"),
        chroma_url=env.get("MLSD_CHROMA_URL") or None,
        voice=_voice(env, key, base_url),
        model=env.get("MLSD_MODEL") or DEFAULT_MODEL,
        base_url=base_url,
        api_key=key,
        llm_timeout=float(_int(env, "MLSD_LLM_TIMEOUT", 30)),
        llm_retries=_int(env, "MLSD_LLM_RETRIES", 1),
        llm_max_tokens=_at_least_one(env, "MLSD_LLM_MAX_TOKENS", 400),
        llm_deadline=_positive(env, "MLSD_LLM_DEADLINE", 20.0),
        llm_detect=_flag(env, "MLSD_LLM_DETECT"),
        host=env.get("MLSD_HOST") or "127.0.0.1",
        port=_int(env, "MLSD_PORT", 7860),
        auth=_auth(env.get("MLSD_AUTH")),
        users_file=Path(env["MLSD_USERS"]).expanduser() if env.get("MLSD_USERS") else None,
        database_url=_database_url(env.get("MLSD_DATABASE_URL")),
    )
