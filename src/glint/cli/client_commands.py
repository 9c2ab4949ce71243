"""Client commands: talk to a Glint server's REST API like any other client."""

from __future__ import annotations

import json as jsonlib

import click

from glint.cli import config
from glint.cli.api_client import GlintAPI
from glint.cli.output import shown


def api() -> GlintAPI:
    saved = config.load()
    if saved is None:
        raise click.ClickException("not logged in: run `glint login --url https://SERVER` first")
    return GlintAPI(saved)


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """Print ``rows`` as aligned columns; ``columns`` are (key, heading) pairs."""
    cells = [[shown(heading) for _, heading in columns]]
    cells += [[shown(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for line in cells:
        click.echo("  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip())


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table."
)
group_option = click.option(
    "--group", "group", help="Group id or name (default: your default group)."
)


def resolve_group(client: GlintAPI, group: str | None) -> int | None:
    """Accept a group's name or id on the command line."""
    if group is None or group.isdigit():
        return int(group) if group else None
    for item in client.get_all("groups/"):
        if item["name"] == group:
            return item["id"]
    raise click.ClickException(f"you are in no group named {group!r}")


@click.command()
@click.option("--url", required=True, help="The Glint server, e.g. https://glint.example.org:8443")
# Absolute paths are saved, so that later commands work from any directory.
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    help="Your certificate (PEM).",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    help="Its private key (PEM).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    help="CA file that signed the server.",
)
@click.option(
    "--ca-dir",
    type=click.Path(exists=True, file_okay=False, resolve_path=True),
    help="CA directory (default $X509_CERT_DIR).",
)
def login(url, cert, key, ca_file, ca_dir):
    """Save the server and your identity, and check that the server knows you.

    Without --cert, the grid proxy in $X509_USER_PROXY or /tmp/x509up_u<uid> is used.
    """
    if not url.startswith(("https://", "http://")):
        raise click.ClickException("--url must start with https://")
    if cert is None:
        proxy = config.grid_proxy_path()
        if proxy is None:
            raise click.ClickException(
                "no --cert given and no grid proxy found ($X509_USER_PROXY, /tmp/x509up_u<uid>)"
            )
        cert = str(proxy)
    settings = config.ClientConfig(url=url, cert=cert, key=key, ca_file=ca_file, ca_dir=ca_dir)
    me = GlintAPI(settings).get("whoami/")
    path = config.save(settings)
    click.echo(f"logged in to {url} as {shown(me['display_dn'])} (saved in {path})")


@click.command()
@json_option
def whoami(as_json):
    """Show who the server thinks you are, and your groups."""
    me = api().get("whoami/")
    if as_json:
        click.echo(jsonlib.dumps(me, indent=2))
        return
    click.echo(f"{shown(me['display_dn'])}{'  (admin)' if me['is_admin'] else ''}")
    for group in me["groups"]:
        click.echo(f"  {shown(group['name'])}: {shown(group['role'])}")


def show_group_list(
    path: str, group: str | None, as_json: bool, columns, describe, empty: str
) -> None:
    """Print every item of a group-scoped API list as JSON, or as a table after
    ``describe(item)``."""
    client = api()
    items = client.get_all(path, group=resolve_group(client, group))
    if as_json:
        click.echo(jsonlib.dumps(items, indent=2))
    elif not items:
        click.echo(empty)
    else:
        print_table([describe(item) for item in items], columns)


@click.command()
@group_option
@json_option
def repos(group, as_json):
    """List the repos (cloud projects) of your groups, with their last poll."""
    show_group_list(
        "repos/",
        group,
        as_json,
        [
            ("id", "ID"),
            ("group", "GROUP"),
            ("name", "NAME"),
            ("kind", "KIND"),
            ("region", "REGION"),
            ("endpoint", "ENDPOINT"),
            ("poll", "POLL"),
            ("last_poll_error", "LAST ERROR"),
        ],
        lambda item: {
            **item,
            # An OpenStack repo's Keystone; an EC2 repo's endpoint, or AWS itself.
            "endpoint": item.get("auth_url") or item.get("endpoint_url") or "AWS",
            "poll": {True: "ok", False: "FAILED", None: "never"}[item["last_poll_ok"]],
        },
        "No repos yet.",
    )


CELL_MARKS = {"present": "✓", "foreign": "○", "absent": "·"}


@click.command()
@group_option
@click.option("--hidden", is_flag=True, help="Show the hidden rows instead.")
@click.option("--name", "needle", help="Only rows whose name contains this text.")
@json_option
def images(group, hidden, needle, as_json):
    """Show the image matrix: one row per (name, content), one column per repo.

    ✓ a verified copy, ○ a copy owned by another project (public, shared, community), · absent.
    """
    client = api()
    params = {
        "group": resolve_group(client, group),
        "hidden": "true" if hidden else "false",
        "q": needle,
    }
    first = client.get("images/", **params)
    rows = client.get_all("images/", **params) if first.get("next") else first["results"]
    if as_json:
        click.echo(jsonlib.dumps({"repos": first["repos"], "rows": rows}, indent=2))
        return
    repo_names = {repo["id"]: repo["name"] for repo in first["repos"]}
    table = []
    for row in rows:
        line = {
            "name": row["name"],
            "hash": row["content_key"][:19],
            "size": row["size"],
            "formats": row["formats"],
        }
        for cell in row["cells"]:
            line[f"repo{cell['repo']}"] = CELL_MARKS.get(cell["state"], cell["state"])
        if row["conflict_types"]:
            line["conflicts"] = ",".join(f"type {t}" for t in row["conflict_types"])
        table.append(line)
    columns = [("name", "NAME"), ("hash", "CONTENT"), ("size", "SIZE"), ("formats", "FORMATS")]
    columns += [(f"repo{rid}", name) for rid, name in repo_names.items()] + [
        ("conflicts", "CONFLICTS")
    ]
    print_table(table, columns)


@click.command()
@group_option
@json_option
def conflicts(group, as_json):
    """List image conflicts: same name/other content, duplicates, same content/other names."""
    show_group_list(
        "conflicts/",
        group,
        as_json,
        [
            ("type", "TYPE"),
            ("kind", "KIND"),
            ("subject", "SUBJECT"),
            ("where", "WHERE"),
            ("images", "IMAGES"),
            ("ack", "ACKNOWLEDGED"),
        ],
        lambda item: {
            **item,
            "where": f"repo {item['repo']}" if item["repo"] else "across repos",
            "images": len(item["copies"]),
            "ack": "yes" if item["acknowledged"] else "",
        },
        "No conflicts.",
    )


def register(cli: click.Group) -> None:
    for command in (login, whoami, repos, images, conflicts):
        cli.add_command(command)
