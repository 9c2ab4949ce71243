"""``glint backup DIR`` and ``glint restore DIR``: the database and the key files, together.

A backup is a directory (mode 0700) of three kinds of file:

- ``database.json``: every row of Glint's tables (users, groups, repos with their encrypted
  credentials, inventories, jobs, plans, uploads, the audit trail), as Django's ``dumpdata``
  writes them, read in one transaction (``REPEATABLE READ`` on PostgreSQL), so a job or an audit
  record written meanwhile is either wholly in it or not at all. The format does not depend on
  the database: a SQLite backup restores into PostgreSQL and back.
- ``secret_key`` and ``credential_keys``: without the second, no stored credential decrypts.
- ``manifest.json``: when, from which database, the schema's migrations, and how many rows of
  each table, checked again after a restore.

A restore refuses a database that already holds people, groups or repos unless told
(``--force``): restoring over a live Glint would lose what it holds. It empties the database and
loads the backup in one transaction, so a backup that fails to load (a corrupted or truncated
dump) leaves the database as it was. Stop ``glint serve`` and the
workers first; they read the key files when they start.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from pathlib import Path

import click

from glint.cli.server_commands import setup_django

MANIFEST, DATABASE = "manifest.json", "database.json"
FORMAT = 1
#: Rows Django makes itself on migrate (restored by their natural keys), and login sessions.
NOT_BACKED_UP = ["contenttypes", "auth.permission", "sessions"]


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup(directory: Path):
    """Write the database and the key files into DIRECTORY (new or empty), consistently."""
    setup_django()
    from django.conf import settings

    from glint.config import CREDENTIAL_KEYS_FILE, SECRET_KEY_FILE

    if directory.exists() and any(directory.iterdir()):
        raise click.ClickException(f"{directory} is not empty: back up into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # it holds the keys that decrypt every credential
    vendor, counts = _dump(directory / DATABASE)
    for name in (SECRET_KEY_FILE, CREDENTIAL_KEYS_FILE):
        _copy_private(settings.DATA_DIR / name, directory / name)
    manifest = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "database": vendor,
        "migrations": _migrations(),
        "rows": counts,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(counts.values())
    click.echo(f"{directory}: {total} rows of {len(counts)} tables from {vendor}, and the keys")


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace a database that already holds people, groups or repos (all of it is lost).",
)
def restore(directory: Path, force: bool):
    """Restore a backup made by ``glint backup`` into this Glint's database and data directory."""
    manifest = _read_manifest(directory)
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from glint.config import CREDENTIAL_KEYS_FILE, SECRET_KEY_FILE

    call_command("migrate", interactive=False, verbosity=0)
    held = _held()
    if held and not force:
        raise click.ClickException(
            f"this database already holds {held}: restore refuses to overwrite a live Glint; "
            "stop it, and use --force to replace everything in it with the backup"
        )
    try:
        counts = _load(directory / DATABASE, manifest["rows"])
    except Exception as exc:  # whatever loaddata or the database raised: nothing was changed
        raise click.ClickException(
            f"restore failed, the database is as it was: {type(exc).__name__}: {exc}"
        ) from None
    for name in (SECRET_KEY_FILE, CREDENTIAL_KEYS_FILE):
        _copy_private(directory / name, settings.DATA_DIR / name)
    click.echo(
        f"restored {sum(counts.values())} rows and the keys from {directory} "
        f"(made {manifest['created']} from {manifest['database']}); start Glint again"
    )


def _read_manifest(directory: Path) -> dict:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{directory} is not a Glint backup: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise click.ClickException(f"{directory}: backup format {manifest.get('format')!r} unknown")
    from glint.config import CREDENTIAL_KEYS_FILE, SECRET_KEY_FILE

    missing = [
        n for n in (DATABASE, SECRET_KEY_FILE, CREDENTIAL_KEYS_FILE) if not (directory / n).exists()
    ]
    if missing:
        raise click.ClickException(f"{directory} lacks {', '.join(missing)}: not restored")
    return manifest


def _dump(path: Path) -> tuple[str, dict[str, int]]:
    """Every table's rows into ``path``, and the row counts, read in one snapshot."""
    from django.core.management import call_command
    from django.db import connection, transaction

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with path.open("w") as out:
            call_command(
                "dumpdata", natural_foreign=True, exclude=NOT_BACKED_UP, stdout=out, verbosity=0
            )
        return connection.vendor, _counts()


def _load(path: Path, rows: dict[str, int]) -> dict[str, int]:
    """Empty this database (a forced restore's rows, or those its migrations made) and load the
    backup's rows into it, with its id sequences moved past them (PostgreSQL would otherwise
    hand out ids the backup already uses), all in one transaction: a dump that fails to load,
    or loads other row counts than ``rows`` (the manifest's), leaves the database as it was.
    Returns the row counts.

    Raises:
        ValueError: the row counts differ from the manifest's.
    """
    from django.apps import apps
    from django.core.management import call_command
    from django.core.management.color import no_style
    from django.db import connection, transaction

    with transaction.atomic():
        _empty(connection)
        call_command("loaddata", str(path), verbosity=0)
        statements = connection.ops.sequence_reset_sql(no_style(), apps.get_models())
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        counts = _counts()
        wrong = {
            table: (n, counts.get(table, 0))
            for table, n in rows.items()
            if counts.get(table, 0) != n
        }
        if wrong:
            raise ValueError(f"rows differ from the backup's (backup, loaded): {wrong}")
    return counts


def _empty(connection) -> None:
    """Delete every row but Django's own (content types and permissions, which migrate made and
    the backup names by natural key), inside the caller's transaction: Django's ``flush``
    command would commit on its own and recreate those rows."""
    from django.core.management.color import no_style

    kept = {"django_content_type", "auth_permission"}
    tables = [
        t for t in connection.introspection.django_table_names(only_existing=True) if t not in kept
    ]
    with connection.cursor() as cursor:
        for statement in connection.ops.sql_flush(no_style(), tables):
            cursor.execute(statement)


def _backed_up_models():
    from django.apps import apps

    skipped = {"contenttypes", "sessions"}
    return [
        m
        for m in apps.get_models()
        if m._meta.app_label not in skipped and m._meta.label_lower != "auth.permission"
    ]


def _counts() -> dict[str, int]:
    return {m._meta.label_lower: m._default_manager.count() for m in _backed_up_models()}


def _held() -> str:
    """What makes this database a live Glint's (people, groups or repos), or ""."""
    from glint.accounts.models import Group, User
    from glint.repos.models import Repo

    found = [
        f"{model.objects.count()} {what}"
        for model, what in ((User, "people"), (Group, "groups"), (Repo, "repos"))
        if model.objects.exists()
    ]
    return ", ".join(found)


def _migrations() -> dict[str, str]:
    from django.db.migrations.recorder import MigrationRecorder

    latest: dict[str, str] = {}
    for app, name in MigrationRecorder.Migration.objects.values_list("app", "name"):
        latest[app] = max(latest.get(app, ""), name)
    return dict(sorted(latest.items()))


def _copy_private(source: Path, target: Path) -> None:
    """Copy a key file, readable by its owner only, replacing ``target`` in one step."""
    part = target.with_name(target.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as handle:
        shutil.copyfileobj(handle, out)
    os.replace(part, target)


def register(cli: click.Group) -> None:
    for command in (backup, restore):
        cli.add_command(command)
