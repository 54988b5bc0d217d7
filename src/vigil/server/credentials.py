"""Secrets handed out once and kept only as hashes: passwords, API keys, agent credentials.

Passwords are chosen for people and guessable, so they are kept as Argon2 hashes (pwdlib).
API keys, enrolment tokens and agent credentials are 32 random bytes: SHA-256 of one cannot be
searched, and is fast enough to check on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cache
from typing import Any

# A prefix per kind of secret: a key pasted in the wrong place is recognised (and secret
# scanners can find one in a repository or a log).
API_KEY_PREFIX = "vk_"
AGENT_PREFIX = "va_"
ENROLMENT_PREFIX = "vt_"
SECRET_BYTES = 32
PASSWORD_BYTES = 18


def new_secret(prefix: str) -> str:
    """A new random secret of one kind."""
    return prefix + secrets.token_urlsafe(SECRET_BYTES)


def secret_sha256(secret: str) -> str:
    """What is stored of a random secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_password() -> str:
    """A generated password for a new user."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


@cache
def _hasher() -> Any:
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    """An Argon2 hash of a password."""
    return str(_hasher().hash(password))


def verify_password(password: str, stored: str) -> bool:
    """True when `password` is the one `stored` was made from."""
    return bool(_hasher().verify(password, stored))
