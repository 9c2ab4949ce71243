"""Client commands for jobs: ``glint copy``, ``glint delete``, ``glint jobs``,
``glint cancel/retry``.

``copy`` and ``delete`` go through the same plan as the matrix page (``POST /api/v1/plans/``, then
``POST /api/v1/plans/{id}/apply/``), so the command line gets the same refusals, with the same
reasons. With ``--wait`` they follow the jobs and exit with
:data:`glint.jobs.states.CLI_EXIT_CODES`: 0 done, 2 partial, 1 failed or cancelled.
"""

from __future__ import annotations

import json as jsonlib
import sys
import time

import click

from glint.cli.api_client import GlintAPI
from glint.cli.client_commands import (
    api,
    group_option,
    json_option,
    print_table,
    resolve_group,
)
from glint.cli.output import shown
from glint.jobs.states import CLI_EXIT_CODES, JOB_ACTIVE_STATES, JOB_STATES

#: Seconds between looks at a job while waiting or watching.
POLL_SECONDS = 1.0
BAR_WIDTH = 20


# Naming images and repos


def _matrix(client: GlintAPI, group: int | None) -> dict:
    """The group's rows (hidden ones too), repos and inventory version, in one listing."""
    first = client.get("images/", group=group, hidden="all", limit=1000)
    rows = (
        client.get_all("images/", group=group, hidden="all")
        if first.get("next")
        else first["results"]
    )
    return {
        "group": first["group"],
        "version": first["inventory_version"],
        "repos": first["repos"],
        "rows": rows,
    }


def _label(row: dict, repo_names: dict[int, str]) -> str:
    held = [
        repo_names.get(cell["repo"], str(cell["repo"])) for cell in row["cells"] if cell["copies"]
    ]
    return shown(f"  {row['name']}@{row['content_key'][:23]}  (in {', '.join(held) or 'no repo'})")


def resolve_image(matrix: dict, image: str) -> dict:
    """The row IMAGE names: ``name``, ``name@<algo>:<hex prefix>``, or a cloud image id.

    Raises:
        click.ClickException: No row matches, or the name is ambiguous (the choices are listed).
    """
    rows = matrix["rows"]
    by_id = [
        r
        for r in rows
        if any(c["image_id"] == image for cell in r["cells"] for c in cell["copies"])
    ]
    if by_id:
        return by_id[0]
    name, _, content = image.partition("@")
    found = [r for r in rows if r["name"] == name and r["content_key"].startswith(content)]
    if not found:
        raise click.ClickException(f"no image named {image!r} in this group (see `glint images`)")
    if len(found) > 1:
        names = {repo["id"]: repo["name"] for repo in matrix["repos"]}
        choices = "\n".join(_label(r, names) for r in found)
        raise click.ClickException(
            f"{name!r} names {len(found)} different images; say which with NAME@HASH:\n{choices}"
        )
    return found[0]


def resolve_repos(matrix: dict, names: tuple[str, ...]) -> list[dict]:
    by_name = {repo["name"]: repo for repo in matrix["repos"]}
    by_id = {str(repo["id"]): repo for repo in matrix["repos"]}
    repos = []
    for name in names:
        repo = by_name.get(name) or by_id.get(name)
        if repo is None:
            known = shown(", ".join(sorted(by_name)))
            raise click.ClickException(f"no repo {name!r} in this group (known: {known})")
        repos.append(repo)
    return repos


# Following jobs


def _final(job: dict) -> bool:
    return job["state"] not in JOB_ACTIVE_STATES and not job["next_attempt_at"]


def _bar(target: dict) -> str:
    if target["state"] == "writing" and target["progress"] is not None:
        filled = BAR_WIDTH * target["progress"] // 100
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {target['progress']:3d}%"
    if target["state"] == "failed" and target["next_attempt_at"]:
        return "retrying"
    return target["state"]


def _targets(job: dict) -> str:
    return "  ".join(f"{shown(t['repo_name'])} {_bar(t)}" for t in job["targets"])


def _status_line(job: dict) -> str:
    return (
        f"job {job['id']} {job['kind']} {shown(job['image_name'])}: {job['state']}  {_targets(job)}"
    )


def _summary(job: dict) -> str:
    lines = [f"job {job['id']} {job['kind']} {shown(job['image_name'])}: {job['state']}"]
    for target in job["targets"]:
        detail = target["outcome"] or target["state"]
        if target["error"]:
            detail += f": {target['error']}"
        lines.append(f"  {shown(target['repo_name'])}: {shown(detail)}")
    return "\n".join(lines)


def wait_for(client: GlintAPI, job_ids: list[int]) -> int:
    """Follow jobs until each has ended; print a summary; return the exit code."""
    tty = sys.stdout.isatty()
    shown: dict[int, str] = {}
    jobs: dict[int, dict] = {}
    while True:
        jobs = {job_id: client.get(f"jobs/{job_id}/") for job_id in job_ids}
        for job_id, job in jobs.items():
            line = _status_line(job)
            if tty:
                click.echo(f"\r{line}\x1b[K", nl=False)
            elif _strip_progress(line) != _strip_progress(shown.get(job_id, "")):
                click.echo(line)
            shown[job_id] = line
        if all(_final(job) for job in jobs.values()):
            break
        time.sleep(POLL_SECONDS)
    if tty:
        click.echo()
    for job in jobs.values():
        click.echo(_summary(job))
    return exit_code([job["state"] for job in jobs.values()])


def exit_code(job_states: list[str]) -> int:
    """1 if any job failed or was cancelled, else 2 if any is partial, else 0."""
    codes = {CLI_EXIT_CODES.get(state, 1) for state in job_states}
    return 1 if 1 in codes else max(codes, default=0)


def _strip_progress(line: str) -> str:
    return "".join(ch for ch in line if ch not in "#.%0123456789")


# Commands


def _plan_and_apply(group, image, repos, action, wait, force=False):
    client = api()
    matrix = _matrix(client, resolve_group(client, group))
    row = resolve_image(matrix, image)
    targets = resolve_repos(matrix, repos)
    plan = client.post(
        "plans/",
        {
            "group": matrix["group"],
            "inventory_version": matrix["version"],
            "force": force,
            "changes": [
                {"row": row["id"], "repo": repo["id"], "action": action} for repo in targets
            ],
        },
    )
    for item in plan["items"]:
        if item["status"] != "planned":
            click.echo(f"{shown(item['repo_name'])}: {item['status']}: {shown(item['reason'])}")
    if not any(item["status"] == "planned" for item in plan["items"]):
        refused = any(item["status"] == "refused" for item in plan["items"])
        click.echo("nothing to do" if not refused else "nothing was started")
        sys.exit(1 if refused else 0)
    job_ids = client.post(f"plans/{plan['id']}/apply/")["jobs"]
    click.echo(f"{action} of {shown(row['name'])}: job {', '.join(map(str, job_ids))} started")
    if wait:
        sys.exit(wait_for(client, job_ids))


wait_option = click.option(
    "--wait",
    is_flag=True,
    help="Follow the job and exit 0 when done, 2 when partial, 1 when failed or cancelled.",
)


@click.command()
@click.argument("image")
@click.option(
    "--to",
    "repos",
    multiple=True,
    required=True,
    help="A repo to copy to (name or id); repeat for more.",
)
@group_option
@wait_option
def copy(image, repos, group, wait):
    """Copy IMAGE to repos, verified: IMAGE is a name, NAME@sha256:PREFIX, or a cloud image id."""
    _plan_and_apply(group, image, repos, "copy", wait)


@click.command()
@click.argument("image")
@click.option(
    "--from",
    "repos",
    multiple=True,
    required=True,
    help="A repo to delete it from; repeat for more.",
)
@click.option(
    "--force", is_flag=True, help="Admins: also delete public, shared or community images."
)
@group_option
@wait_option
def delete(image, repos, force, group, wait):
    """Delete IMAGE from repos (refused for the last copy, protected or foreign images, ...)."""
    _plan_and_apply(group, image, repos, "delete", wait, force=force)


@click.command()
@group_option
@click.option("--state", type=click.Choice(JOB_STATES), help="Only jobs in this state.")
@click.option("--watch", is_flag=True, help="Redraw every second until no listed job is live.")
@json_option
def jobs(group, state, watch, as_json):
    """List jobs: copies, deletes and property syncs, with per-target progress."""
    client = api()
    params = {"group": resolve_group(client, group), "state": state}
    while True:
        items = client.get("jobs/", limit=50, **params)["results"]
        if as_json:
            click.echo(jsonlib.dumps(items, indent=2))
            return
        if watch:
            click.clear()
        if not items:
            click.echo("No jobs.")
        else:
            print_table(
                [
                    {
                        **item,
                        "targets": _targets(item),
                        "created": item["created"][:19].replace("T", " "),
                    }
                    for item in items
                ],
                [
                    ("id", "ID"),
                    ("kind", "KIND"),
                    ("image_name", "IMAGE"),
                    ("state", "STATE"),
                    ("targets", "TARGETS"),
                    ("requester", "REQUESTER"),
                    ("created", "CREATED"),
                ],
            )
        if not watch or all(_final(item) for item in items):
            return
        time.sleep(POLL_SECONDS)


@click.command()
@click.argument("job", type=int)
def cancel(job):
    """Cancel JOB: it stops within seconds and leaves nothing half-made in any cloud."""
    result = api().post(f"jobs/{job}/cancel/")
    click.echo(f"job {job}: cancel requested ({result['state']})")


@click.command()
@click.argument("job", type=int)
@wait_option
def retry(job, wait):
    """Retry JOB: only its targets that are not done are redone."""
    client = api()
    result = client.post(f"jobs/{job}/retry/")
    click.echo(f"job {job}: {result['state']}")
    if wait:
        sys.exit(wait_for(client, [job]))


def register(cli: click.Group) -> None:
    for command in (copy, delete, jobs, cancel, retry):
        cli.add_command(command)
