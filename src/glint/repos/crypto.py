"""Cloud credentials at rest: Fernet tokens under the keys in ``settings.GLINT_CREDENTIAL_KEYS``.

The keys are listed newest first: the first encrypts, every key decrypts (``MultiFernet``), which is
what lets ``glint keys rotate`` (``glint.repos.keys``) move secrets to a new key without downtime.

A stored secret is held in memory as a :class:`SealedSecret` (the ciphertext), never as plain
text: only :meth:`SealedSecret.reveal`, called when a cloud connection is built, decrypts it. So a
model instance can be printed, logged, pickled or put in a template without leaking anything.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

KEY_FILE_NAME = "credential_keys"
MASK = "********"


class CredentialKeyError(Exception):
    """A stored secret cannot be decrypted with any configured key (the key file was replaced?)."""


@functools.lru_cache(maxsize=8)
def keyring_for(keys: tuple[str, ...]) -> MultiFernet:
    """The MultiFernet for ``keys`` (newest first); cached because building it parses every key."""
    if not keys:
        raise CredentialKeyError("no credential keys are configured")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def key_file() -> Path:
    return Path(settings.DATA_DIR) / KEY_FILE_NAME


def read_key_file(path: Path | None = None) -> list[str]:
    """The keys stored in the key file, newest first (empty when there is no file)."""
    path = path or key_file()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def keyring() -> MultiFernet:
    return keyring_for(tuple(settings.GLINT_CREDENTIAL_KEYS))


def encrypt(plain: str) -> str:
    return keyring().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt ``token``; a key the process has not loaded yet is looked up in the key file.

    ``glint keys rotate`` runs in its own process and re-encrypts under a new key that running
    servers and workers did not load at start-up; falling back to the key file once lets them keep
    working until they restart.
    """
    try:
        return keyring().decrypt(token.encode()).decode()
    except InvalidToken:
        pass
    stored = tuple(read_key_file())
    if stored and stored != tuple(settings.GLINT_CREDENTIAL_KEYS):
        try:
            return keyring_for(stored).decrypt(token.encode()).decode()
        except InvalidToken:
            pass
    raise CredentialKeyError(
        "a stored cloud credential cannot be decrypted with any configured key; "
        "was the credential key file replaced? Re-enter the repo's password or secret."
    )


class SealedSecret:
    """A secret as stored: its Fernet token. Prints as a mask; compares by token."""

    __slots__ = ("token",)

    def __init__(self, token: str):
        self.token = token

    @classmethod
    def seal(cls, plain: str) -> SealedSecret:
        return cls(encrypt(plain))

    def reveal(self) -> str:
        """The plain secret. Call only to hand it to a cloud driver."""
        return decrypt(self.token)

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return "SealedSecret(<hidden>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SealedSecret) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)
