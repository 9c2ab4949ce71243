"""Server-side repo commands: credential key rotation and clouds.yaml import (local database)."""

from pathlib import Path

import click

from glint.cli.output import shown
from glint.cli.server_commands import setup_django


@click.group()
def keys():
    """Manage the keys that encrypt cloud credentials."""


@keys.command("rotate")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option("--drop-old", is_flag=True, help="Afterwards remove the old keys from the key file.")
def keys_rotate(dry_run, drop_old):
    """Add a new credential key and re-encrypt every stored secret under it."""
    setup_django()
    from glint.repos.keys import KeyRotationError, rotate

    try:
        report = rotate(dry_run=dry_run, drop_old=drop_old)
    except KeyRotationError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "would re-encrypt" if dry_run else "re-encrypted"
    click.echo(f"{verb} {report.reencrypted} of {report.secrets} secret(s)")
    click.echo(
        f"keys: {report.keys_before} -> {report.keys_after}"
        f"{' (dry run: key file unchanged)' if dry_run else ''}"
    )
    if report.unreadable:
        click.echo(
            f"{len(report.unreadable)} secret(s) fit no key and were left as they are:", err=True
        )
        for where in report.unreadable:
            click.echo(f"  {where}", err=True)
        raise SystemExit(1)
    if not dry_run:
        click.echo("restart glint serve and the workers so they encrypt with the new key")


@click.group()
def repo():
    """Manage repos on this server."""


@repo.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--group", "group_name", required=True, help="The group that gets the repos.")
@click.option("--cloud", "clouds", multiple=True, help="Import only this cloud (repeatable).")
@click.option(
    "--site", default="", help="The site of every imported repo (see glint worker --site)."
)
def repo_import(file, group_name, clouds, site):
    """Add the clouds of a clouds.yaml to a group, each checked against its cloud first.

    cacert files are read from this machine, relative to the clouds.yaml. Exits 1 if any cloud
    failed.
    """
    setup_django()
    from glint.accounts.models import Group
    from glint.repos import services

    group = Group.objects.filter(name=group_name).first()
    if group is None:
        raise click.ClickException(f"there is no group named {group_name!r}")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    try:
        results = services.import_clouds_yaml(
            text,
            group,
            names=clouds,
            read_ca=services.local_ca_reader(file.resolve().parent),
            site=site,
        )
    except services.RepoValidationError as exc:
        raise click.ClickException(f"{file}: {exc.message}") from None
    for result in results:
        reason = f": {shown(result.reason)}" if result.reason else ""
        click.echo(f"{shown(result.cloud)}: {result.status}{reason}")
    if any(result.status == services.ImportStatus.FAILED for result in results):
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    for command in (keys, repo):
        cli.add_command(command)
