"""Credential key rotation (``glint keys rotate``), after Pulp's ``rotate-db-key``.

1. A new Fernet key is put in front of ``DATA_DIR/credential_keys`` (the old ones stay, so every
   process can still decrypt while the secrets move).
2. Every encrypted column of every model (any ``EncryptedTextField``: repos today, others later) is
   re-encrypted under the new key in batches, each row updated only if its token is still the one
   read, so a password changed meanwhile is never overwritten.
3. With ``drop_old``, and only once every secret decrypts with the new key alone, the old keys are
   removed from the file.

Safe to rerun after an interruption: each run re-encrypts whatever is not under its newest key.
Running servers read the key file again when a token does not fit the keys they started with
(``glint.repos.crypto.decrypt``); restart them after a rotation all the same.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.db import transaction

from glint.repos.crypto import SealedSecret, key_file, read_key_file
from glint.repos.fields import EncryptedTextField

BATCH_SIZE = 500


class KeyRotationError(Exception):
    """Rotation cannot go on; the message says why and what to do."""


@dataclasses.dataclass
class RotationReport:
    keys_before: int = 0
    keys_after: int = 0
    secrets: int = 0
    reencrypted: int = 0
    unreadable: list[str] = dataclasses.field(default_factory=list)
    dropped_old_keys: int = 0


def encrypted_columns() -> Iterator[tuple[type, list[str]]]:
    """Each model with encrypted fields, and those fields' names."""
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            yield model, names


def write_key_file(keys: list[str], path: Path | None = None) -> None:
    """Replace the key file atomically, readable by the owner only."""
    path = path or key_file()
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _reencrypt(
    keyring: MultiFernet, primary: Fernet, report: RotationReport, dry_run: bool
) -> None:
    for model, names in encrypted_columns():
        last_pk = None
        while True:
            rows = model._base_manager.order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            batch = list(rows.values_list("pk", *names)[:BATCH_SIZE])
            if not batch:
                break
            last_pk = batch[-1][0]
            with transaction.atomic():
                for pk, *values in batch:
                    for name, sealed in zip(names, values):
                        if sealed:
                            _reencrypt_one(
                                model, pk, name, sealed, keyring, primary, report, dry_run
                            )


def _reencrypt_one(
    model, pk, name, sealed: SealedSecret, keyring, primary, report, dry_run
) -> None:
    report.secrets += 1
    token = sealed.token.encode()
    try:
        primary.decrypt(token)
        return  # already under the newest key
    except InvalidToken:
        pass
    try:
        new_token = keyring.rotate(token).decode()
    except InvalidToken:
        report.unreadable.append(f"{model._meta.label} {pk} {name}")
        return
    report.reencrypted += 1
    if not dry_run:
        model._base_manager.filter(pk=pk, **{name: sealed}).update(
            **{name: SealedSecret(new_token)}
        )


def _all_readable_with(primary: Fernet) -> bool:
    for model, names in encrypted_columns():
        for values in model._base_manager.values_list(*names).iterator():
            for sealed in values:
                if not sealed:
                    continue
                try:
                    primary.decrypt(sealed.token.encode())
                except InvalidToken:
                    return False
    return True


def rotate(*, dry_run: bool = False, drop_old: bool = False) -> RotationReport:
    """Add a new key, re-encrypt every secret under it, and optionally drop the old keys.

    Raises:
        KeyRotationError: There is no key file, some secret fits no key (when dropping old keys),
            or a secret was written under an old key while dropping.
    """
    path = key_file()
    old_keys = read_key_file(path)
    if not old_keys:
        raise KeyRotationError(f"there is no credential key file at {path}")
    new_key = Fernet.generate_key().decode()
    keys = [new_key, *old_keys]
    report = RotationReport(keys_before=len(old_keys), keys_after=len(keys))
    if not dry_run:
        write_key_file(keys, path)
    primary = Fernet(new_key.encode())
    _reencrypt(MultiFernet([Fernet(k.encode()) for k in keys]), primary, report, dry_run)
    if drop_old:
        if report.unreadable:
            raise KeyRotationError(
                f"{len(report.unreadable)} secret(s) fit none of the keys, "
                "so the old keys are kept: " + ", ".join(report.unreadable)
            )
        if not dry_run:
            if not _all_readable_with(primary):
                raise KeyRotationError(
                    "a secret was saved under an old key meanwhile; run the rotation again"
                )
            write_key_file([new_key], path)
        report.dropped_old_keys = len(old_keys)
        report.keys_after = 1
    return report
