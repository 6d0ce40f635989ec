"""Users for a shared server: the MLSD_USERS file, scrypt password hashes, throttled logins.

The file holds one user a line, `name:scrypt:N:r:p:SALT:HASH` (hex salt and hash;
`#` starts a comment). `mlsd-bot add-user NAME` writes such a line; no password is
ever stored or logged in clear. `Authenticator` is the callable a login page asks
(`(name, password) -> bool`): every check costs one scrypt, known name or not, so
timing does not tell which names exist; after a few wrong passwords for a name,
further attempts for it are refused unchecked for a delay that doubles each time
(capped), so guessing online is slow. Each user then sees only their own sessions
(`SessionStore.scoped(name)`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import ConfigError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB and ~50 ms per check: cheap for a login, dear for a guesser
SALT_BYTES, HASH_BYTES = 16, 32
NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
_LINE = re.compile(r"^([^:\s]+):scrypt:(\d+):(\d+):(\d+):([0-9a-f]+):([0-9a-f]+)$")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The stored form of a password: `scrypt:N:r:p:SALT:HASH`."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}:{salt.hex()}:{digest.hex()}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * n * r + 2**20, dklen=HASH_BYTES)


@dataclass(frozen=True)
class _Hash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes = field(repr=False)

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(_scrypt(password, self.salt, self.n, self.r, self.p), self.digest)


def load_users(path: Path) -> dict[str, _Hash]:
    """Read the users file; a bad line is a one-line ConfigError naming the file and line (never the hash)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"MLSD_USERS: cannot read {path} ({getattr(e, 'strerror', None) or 'not UTF-8'})") from None
    users: dict[str, _Hash] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m or not NAME.match(m.group(1)):
            raise ConfigError(f"{path}:{n}: expected name:scrypt:N:r:p:SALT:HASH - create lines with `mlsd-bot add-user`")
        name, cost, r, p = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        if cost < 2 or cost & (cost - 1) or not (1 <= r <= 64 and 1 <= p <= 16) or cost * r > 2**22:
            raise ConfigError(f"{path}:{n}: scrypt parameters out of range for user {name!r}")
        if name in users:
            raise ConfigError(f"{path}:{n}: user {name!r} is listed twice")
        users[name] = _Hash(cost, r, p, bytes.fromhex(m.group(5)), bytes.fromhex(m.group(6)))
    if not users:
        raise ConfigError(f"{path}: no user in the file - add one with `mlsd-bot add-user NAME`")
    return users


def add_user(path: Path, name: str, password: str) -> None:
    """Add `name` to the users file (or replace its password), creating the file owner-readable only."""
    if not NAME.match(name):
        raise ConfigError("a user name is 1-64 letters, digits or . _ @ + -")
    if len(password) < 8:
        raise ConfigError("choose a password of at least 8 characters")
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    lines = [ln for ln in lines if not ln.startswith(f"{name}:")] + [f"{name}:{hash_password(password)}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


class LoginThrottle:
    """After `free` wrong passwords in a row for a name, each further attempt waits `base * 2**k` s (≤ `cap`)."""

    MAX_NAMES = 10_000  # names are attacker-chosen: forget the oldest beyond this

    def __init__(self, free: int = 5, base: float = 1.0, cap: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self.free, self.base, self.cap, self.clock = free, base, cap, clock
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (failures in a row, time of the last)
        self._lock = threading.Lock()

    def wait(self, name: str) -> float:
        """Seconds before `name` may try again (0: now)."""
        with self._lock:
            count, last = self._failures.get(name, (0, 0.0))
        if count < self.free:
            return 0.0
        delay = min(self.cap, self.base * 2 ** (count - self.free))
        return max(0.0, last + delay - self.clock())

    def failed(self, name: str) -> None:
        with self._lock:
            count, _ = self._failures.pop(name, (0, 0.0))
            self._failures[name] = (count + 1, self.clock())  # re-inserted: dict order is recency
            while len(self._failures) > self.MAX_NAMES:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


class Authenticator:
    """`(name, password) -> bool` over the users file, throttled per name."""

    def __init__(self, users: dict[str, _Hash], throttle: LoginThrottle | None = None):
        self.users, self.throttle = users, throttle or LoginThrottle()
        self._decoy = _Hash(SCRYPT_N, SCRYPT_R, SCRYPT_P, os.urandom(SALT_BYTES), os.urandom(HASH_BYTES))

    @classmethod
    def from_file(cls, path: Path) -> "Authenticator":
        return cls(load_users(path))

    def __call__(self, name: str, password: str) -> bool:
        name, password = str(name or ""), str(password or "")
        if self.throttle.wait(name) > 0:
            return False  # refused unchecked: a throttled guess learns nothing
        ok = self.users.get(name, self._decoy).matches(password) and name in self.users
        (self.throttle.succeeded if ok else self.throttle.failed)(name)
        return ok
