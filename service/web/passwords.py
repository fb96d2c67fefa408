"""Worklist users and their passwords, kept only as Argon2id hashes (argon2-cffi).

`ALERTS_WORKLIST_USERS` is `user:secret,...` where each secret is either an Argon2 hash
(`nurse:$argon2id$v=19$m=65536,t=3,p=4$...`, made with `fhir-alerts hash-password`) or, for
convenience, a plain password. Plain ones are hashed when the users are loaded and the plain
value is dropped: the settings object and this process's environment then hold the hashes only
(so neither a child process nor a settings dump carries a password).

Checking a password always costs one Argon2 verification, also for a user that does not exist
(against a dummy hash), so timing does not tell which users exist.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from service.config import Settings

ENV = "ALERTS_WORKLIST_USERS"
_HASH_PREFIX = "$argon2"
# An Argon2 hash holds commas in its parameters ("m=65536,t=3,p=4"): the pieces after such a
# comma belong to the hash, not to a new "user:password" entry.
_HASH_OPEN = re.compile(r"\$argon2(id|i|d)\$v=\d+\$m=\d+(,t=\d+)?$")
_HASH_CONTINUES = re.compile(r"^[tp]=\d+")


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile (the library's default)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hasher().hash("no such user: constant-time refusal")


def hash_password(password: str) -> str:
    return hasher().hash(password)


def _entries(text: str) -> list[str]:
    entries: list[str] = []
    for part in text.split(","):
        if entries and _HASH_CONTINUES.match(part.strip()) and _HASH_OPEN.search(entries[-1]):
            entries[-1] += "," + part.strip()
        else:
            entries.append(part)
    return entries


def parse(text: str) -> dict[str, str]:
    """user -> Argon2 hash. A password may hold ':' (only the first one separates); spaces
    around a user or password are ignored, and so are entries without a user or a password."""
    users: dict[str, str] = {}
    for entry in _entries(text):
        user, sep, secret = entry.partition(":")
        user, secret = user.strip(), secret.strip()
        if not (sep and user and secret):
            continue
        users[user] = secret if secret.startswith(_HASH_PREFIX) else hash_password(secret)
    return users


def serialise(users: Mapping[str, str]) -> str:
    return ",".join(f"{user}:{hashed}" for user, hashed in users.items())


@dataclass(frozen=True)
class Users:
    """The configured worklist users, by name, with their password hashes."""

    hashes: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def __contains__(self, username: object) -> bool:
        return username in self.hashes

    def check(self, username: str, password: str) -> bool:
        expected = self.hashes.get(username)
        ok: bool
        try:
            ok = hasher().verify(expected or _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        return ok and expected is not None


def load(settings: Settings) -> Users:
    """Hash what is given in plain text, then drop the plain values from the settings object
    and from this process's environment."""
    given = settings.worklist_users
    users = parse(given)
    hashed = serialise(users)
    if given != hashed:
        settings.worklist_users = hashed
    from_env = os.environ.get(ENV)
    if from_env and parse_is_plain(from_env):
        os.environ[ENV] = hashed if from_env == given else serialise(parse(from_env))
    return Users(users)


def parse_is_plain(text: str) -> bool:
    """True when some entry carries a plain-text password."""
    for entry in _entries(text):
        _user, sep, secret = entry.partition(":")
        if sep and secret.strip() and not secret.strip().startswith(_HASH_PREFIX):
            return True
    return False
