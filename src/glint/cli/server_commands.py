"""Commands that run on the Glint server against its own database."""

import os

import click


def setup_django() -> None:
    """Configure Django for a command; imported lazily so client commands start fast.

    A bad setting ends the command with its message, not a traceback.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glint.settings")
    import django

    from glint.config import ConfigError

    try:
        django.setup()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


@click.command()
def migrate():
    """Create or upgrade the database schema."""
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)


@click.group()
def user():
    """Manage people (by certificate DN)."""


@user.command("add")
@click.option(
    "--dn",
    required=True,
    help="Certificate subject DN: slash form with OpenSSL -subj escaping "
    "(\\/ \\+ \\, inside a value, "
    "+ between the parts of a multi-valued RDN), or RFC 4514 form.",
)
@click.option("--admin", is_flag=True, help="Make this person a Glint admin.")
@click.option("--group", "group_name", help="Also add the person to this group.")
@click.option(
    "--role", type=click.Choice(["manager", "member"]), default="member", show_default=True
)
@click.option(
    "--token",
    "token_identity",
    nargs=2,
    metavar="ISSUER SUBJECT",
    help="Also let bearer tokens of ISSUER with this subject (sub) sign in as this person.",
)
def user_add(dn, admin, group_name, role, token_identity):
    """Add a person, or update their admin flag and membership if they exist."""
    setup_django()
    from glint.accounts import services
    from glint.accounts.dn import DNError

    try:
        user, created = services.add_user(dn, admin=admin, group_name=group_name, role=role)
        if token_identity:
            services.link_token_identity(user, *token_identity)
    except (DNError, services.AccountError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{'added' if created else 'updated'} {user.dn}{' (admin)' if user.is_admin else ''}"
    )


@click.group()
def group():
    """Manage groups."""


@group.command("add")
@click.argument("name")
@click.option("--description", default="")
@click.option(
    "--copies-run-at",
    type=click.Choice(["target", "source"]),
    default="target",
    show_default=True,
    help="Which site's workers run the group's copies: each target's, or the source's.",
)
@click.option(
    "--raw-copies-format",
    type=click.Choice(["raw", "qcow2"]),
    default="raw",
    show_default=True,
    help="The format copies from raw-only clouds (EC2) are stored in where any is taken (Glance).",
)
def group_add(name, description, copies_run_at, raw_copies_format):
    """Create a group."""
    setup_django()
    from glint.accounts import services

    try:
        created = services.add_group(name, description, copies_run_at, raw_copies_format)
    except services.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added group {created.name}")


def register(cli: click.Group) -> None:
    for command in (migrate, user, group):
        cli.add_command(command)
