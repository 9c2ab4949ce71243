"""Server-side repo commands: credential key rotation and repo import (clouds.yaml, EC2; local
database)."""

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
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--group", "group_name", required=True, help="The group that gets the repos.")
@click.option("--cloud", "clouds", multiple=True, help="Import only this cloud (repeatable).")
@click.option(
    "--site", default="", help="The site of every imported repo (see glint worker --site)."
)
@click.option(
    "--aws-profile",
    help="Add an EC2 repo from this AWS profile (~/.aws/credentials and ~/.aws/config, or "
    "AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE).",
)
@click.option("--name", help="The EC2 repo's name (default: the profile's).")
@click.option("--region", help="EC2: the AWS region (overrides the profile's).")
@click.option("--access-key-id", help="EC2: the access key id.")
@click.option(
    "--secret-access-key",
    envvar="AWS_SECRET_ACCESS_KEY",
    help="EC2: the secret access key; better from AWS_SECRET_ACCESS_KEY (asked if neither).",
)
@click.option(
    "--session-token", envvar="AWS_SESSION_TOKEN", help="EC2: a session token (AWS_SESSION_TOKEN)."
)
@click.option("--role-arn", help="EC2: a role to assume with STS.")
@click.option("--endpoint-url", help="EC2: an EC2-compatible endpoint instead of AWS.")
def repo_import(file, group_name, clouds, site, aws_profile, name, **ec2_options):
    """Add repos to a group, each checked against its cloud first: the clouds of a clouds.yaml
    FILE, or one EC2 account and region (--aws-profile and/or --access-key-id, --region ...).

    cacert files are read from this machine, relative to the clouds.yaml. Exits 1 if any repo
    failed.
    """
    ec2 = aws_profile or ec2_options["access_key_id"]
    if bool(file) == bool(ec2):
        raise click.UsageError("give a clouds.yaml FILE, or --aws-profile / --access-key-id")
    setup_django()
    from glint.accounts.models import Group
    from glint.repos import services

    group = Group.objects.filter(name=group_name).first()
    if group is None:
        raise click.ClickException(f"there is no group named {group_name!r}")
    try:
        if ec2:
            results = [_import_ec2(services, group, site, aws_profile, name, ec2_options)]
        else:
            results = _import_clouds_yaml(services, group, site, file, clouds)
    except services.RepoValidationError as exc:
        raise click.ClickException(f"{file or aws_profile}: {exc.message}") from None
    for result in results:
        reason = f": {shown(result.reason)}" if result.reason else ""
        click.echo(f"{shown(result.cloud)}: {result.status}{reason}")
    if any(result.status == services.ImportStatus.FAILED for result in results):
        raise SystemExit(1)


def _import_clouds_yaml(services, group, site, file: Path, clouds):
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    return services.import_clouds_yaml(
        text,
        group,
        names=clouds,
        read_ca=services.local_ca_reader(file.resolve().parent),
        site=site,
    )


def _import_ec2(services, group, site, profile: str | None, name: str | None, options: dict):
    """One EC2 repo from the profile (if any), the options given replacing its settings.

    The options are named as the repo's fields. A secret in the environment goes with a key id
    given by flag, never with a profile's own key.
    """
    context = click.get_current_context()
    if not options["access_key_id"]:
        for secret in ("secret_access_key", "session_token"):
            if context.get_parameter_source(secret) == click.core.ParameterSource.ENVIRONMENT:
                options[secret] = None
    fields = services.aws_profile_fields(profile) if profile else {}
    fields.update({field: value for field, value in options.items() if value})
    if not fields.get("secret_access_key"):
        fields["secret_access_key"] = click.prompt("Secret access key", hide_input=True)
    name = name or profile
    if not name:
        raise click.UsageError("name the EC2 repo with --name")
    return services.import_ec2(group, name, fields, site=site)


def register(cli: click.Group) -> None:
    for command in (keys, repo):
        cli.add_command(command)
