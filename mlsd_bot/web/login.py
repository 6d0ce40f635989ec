"""The login the browser app asks for: the users of MLSD_USERS and/or the single MLSD_AUTH user.

Both go through one `users.Authenticator`, so every wrong password counts towards the
same per-name throttle and every check costs one scrypt (MLSD_AUTH's password is
hashed in memory at start, never kept for comparing in clear). No login configured:
None, and the app serves without a login page (each browser then sees its own
sessions, see web/app.py).
"""

from __future__ import annotations

import hmac
import os

from ..config import Settings
from ..errors import ConfigError
from ..users import SALT_BYTES, Authenticator, LoginThrottle, hash_password, load_users


class _OnePassword:
    """MLSD_AUTH's password, checked the way a users-file entry is (same scrypt cost)."""

    def __init__(self, password: str):
        self._salt = os.urandom(SALT_BYTES)
        self._stored = hash_password(password, self._salt)

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(hash_password(password, self._salt), self._stored)


def login_check(settings: Settings, throttle: LoginThrottle | None = None) -> Authenticator | None:
    """The `(name, password) -> bool` to hand to gradio's launch(auth=...), or None without login."""
    users: dict = dict(load_users(settings.users_file)) if settings.users_file else {}
    if settings.auth:
        name, password = settings.auth
        if name in users:
            raise ConfigError(f"MLSD_AUTH's user {name!r} is also in {settings.users_file} - keep one of the two")
        users[name] = _OnePassword(password)
    return Authenticator(users, throttle) if users else None
