"""Client commands for subscriptions to signed image lists: ``glint subscribe``,
``glint subscriptions``, ``glint unsubscribe``.

They speak ``/api/v1/subscriptions/`` like any client. A list's basic-auth token is a secret, so it
is read from a file or the environment, never taken as an argument (which ``ps`` would show).
Subscribing fetches and verifies the list at once; a list the server refuses makes ``subscribe``
exit 1 with the reason, although the subscription is kept (the next refresh tries again).
"""

from __future__ import annotations

import json as jsonlib
import os
from pathlib import Path

import click

from glint.cli.api_client import GlintAPI
from glint.cli.client_commands import (
    api,
    group_option,
    json_option,
    print_table,
    resolve_group,
)
from glint.cli.job_commands import resolve_repos
from glint.cli.output import shown
from glint.subscriptions.choices import CONFLICT_POLICIES, OnRemoval

#: Where ``subscribe`` reads a list's token from when no ``--token-file`` is given.
TOKEN_ENV = "GLINT_LIST_TOKEN"


def _group_id(client: GlintAPI, group: str | None) -> int:
    """The group named on the command line, else the caller's default group."""
    found = resolve_group(client, group)
    if found is not None:
        return found
    default = client.get("whoami/").get("default_group")
    if default is None:
        raise click.ClickException("you belong to no group yet: say which with --group")
    return default


def _find(client: GlintAPI, group: int, subscription: str) -> dict:
    """The group's subscription named (or numbered) ``subscription``."""
    for item in client.get_all("subscriptions/", group=group):
        if item["name"] == subscription or str(item["id"]) == subscription:
            return item
    raise click.ClickException(
        f"no subscription {subscription!r} in this group (see `glint subscriptions`)"
    )


def _token(token_file: Path | None) -> str | None:
    if token_file is not None:
        return token_file.read_text().strip()
    return os.environ.get(TOKEN_ENV)


def _report(refresh: dict) -> None:
    """What the first refresh did, a line per image."""
    for name, repos in sorted(refresh["fetching"].items()):
        click.echo(f"  fetching {shown(name)} into {shown(', '.join(repos))}")
    for name in sorted(refresh["present"]):
        click.echo(f"  {shown(name)}: already in every repo")
    for name, reason in sorted(refresh["failed"].items()):
        click.echo(f"  {shown(name)}: not fetched: {shown(reason)}", err=True)


@click.command()
@click.argument("url")
@click.option("--name", required=True, help="The subscription's name, unique in the group.")
@click.option("--endorser-dn", required=True, help="Subject DN of the list's signer.")
@click.option("--endorser-ca", required=True, help="DN of the CA that issued it.")
@click.option(
    "--repo", "repos", multiple=True, required=True, help="Keep the images here (repeatable)."
)
@click.option(
    "--image",
    "images",
    multiple=True,
    help="Take only this list identifier (repeatable; default: every image of the list).",
)
@click.option("--prefix", default="", help="Put before each image's title to make its name.")
@click.option(
    "--refresh-seconds",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="How often the list is fetched again.",
)
@click.option(
    "--on-removal",
    type=click.Choice(OnRemoval.values),
    default=OnRemoval.DELETE.value,
    show_default=True,
    help="What happens to Glint's copies of an image that leaves the list or expires.",
)
@click.option(
    "--conflict-policy",
    type=click.Choice([value for value, _label in CONFLICT_POLICIES]),
    default="replace",
    show_default=True,
    help="What a repo that has the image's name with other content does (an updated image): "
    "replace copies and verifies the new one before it deletes the old.",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"File holding user:password for the list's host (or set ${TOKEN_ENV}).",
)
@group_option
@json_option
def subscribe(
    url,
    name,
    endorser_dn,
    endorser_ca,
    repos,
    images,
    prefix,
    refresh_seconds,
    on_removal,
    conflict_policy,
    token_file,
    group,
    as_json,
):
    """Subscribe the group to the signed image list at URL and keep its images in the repos."""
    client = api()
    group_id = _group_id(client, group)
    targets = resolve_repos({"repos": client.get_all("repos/", group=group_id)}, repos)
    body = {
        "group": group_id,
        "name": name,
        "url": url,
        "endorser_dn": endorser_dn,
        "endorser_ca": endorser_ca,
        "targets": [repo["id"] for repo in targets],
        "images": list(images),
        "name_prefix": prefix,
        "refresh_seconds": refresh_seconds,
        "on_removal": on_removal,
        "conflict_policy": conflict_policy,
    }
    token = _token(token_file)
    if token:
        body["token"] = token
    created = client.post("subscriptions/", body)
    if as_json:
        click.echo(jsonlib.dumps(created, indent=2))
    refresh = created["refresh"]
    if not refresh["ok"]:
        raise click.ClickException(
            f"subscribed as {shown(created['name'])} (id {created['id']}), but the list was "
            f"refused: {shown(refresh['error'])}"
        )
    if not as_json:
        click.echo(
            f"subscribed as {shown(created['name'])} (id {created['id']}): "
            f"{shown(created['list_title'] or created['list_identifier'])} "
            f"version {shown(created['list_version'])} verified"
        )
        _report(refresh)


@click.command()
@group_option
@json_option
def subscriptions(group, as_json):
    """List the group's subscriptions: the list in force, its endorser, the last refresh."""
    client = api()
    items = client.get_all("subscriptions/", group=resolve_group(client, group))
    if as_json:
        click.echo(jsonlib.dumps(items, indent=2))
        return
    if not items:
        click.echo("No subscriptions yet.")
        return
    print_table(
        [
            {
                **item,
                "list": f"{item['list_title'] or item['list_identifier'] or '-'}"
                f" v{item['list_version'] or '-'}",
                "refresh": {True: "ok", False: "REFUSED", None: "never"}[item["last_refresh_ok"]],
            }
            for item in items
        ],
        [
            ("id", "ID"),
            ("name", "NAME"),
            ("list", "LIST IN FORCE"),
            ("endorser_dn", "ENDORSER"),
            ("conflict_policy", "ON UPDATE"),
            ("refresh", "LAST REFRESH"),
            ("last_error", "WHY"),
        ],
    )


@click.command()
@click.argument("subscription")
@group_option
def unsubscribe(subscription, group):
    """Remove SUBSCRIPTION (name or id); the images it brought stay as ordinary rows."""
    client = api()
    found = _find(client, _group_id(client, group), subscription)
    client.request("DELETE", f"subscriptions/{found['id']}/")
    click.echo(f"unsubscribed {shown(found['name'])}; its images stay in the repos")


def register(cli: click.Group) -> None:
    for command in (subscribe, subscriptions, unsubscribe):
        cli.add_command(command)
