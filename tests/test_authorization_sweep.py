"""Authorization sweep: a member of group A tries every page, partial and API call on group B.

The URLs come from Django's URL configuration (every page and htmx partial) and the methods from
the OpenAPI schema (every API operation), so a new view is swept the day it is added. Group B's
objects (group, repo, inventory row) are fed into every path parameter and into ``?group=``.
Nothing may answer with a 5xx, nothing of group B may appear in an answer, and nothing may change
in the database or in group B's cloud project.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from glint import audit
from glint.accounts.services import add_group
from glint.audit.models import AuditRecord
from glint.clouds import RepoConnection, get_driver
from glint.inventory.models import Image
from glint.inventory.poller import poll_repos
from glint.jobs.matrix import forget_cached_matrices, group_matrix
from glint.jobs.services import submit_delete
from glint.matrix.planning import Change
from glint.plans.services import create_plan
from glint.repos.services import repo_from_cloud_entry, save_repo
from tests.clients import client_for, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.devcloud]

B_MARKER = "bravo-sweep-marker"  # appears in group B's names only
METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix=""):
    """Yield (route regex, converters) for every URL pattern, resolvers flattened."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _fill(route: str, value: str) -> str | None:
    """Put ``value`` into every path parameter of ``route``; None if it cannot fit."""
    route = route.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\.", ".")
    filled = re.sub(r"<(?:(\w+):)?(\w+)>", value, route)
    filled = re.sub(r"\(\?P<\w+>[^)]+\)", value, filled)
    if "(" in filled or "[" in filled or "?" in filled or "\\" in filled:
        return None  # optional format suffixes and the like: the plain route covers the view
    return "/" + filled


def _snapshot() -> dict[str, int | tuple]:
    """Row counts of every table, plus the full rows of the tables a refusal must never touch.

    The audit trail is left out: refusals are recorded there on purpose (checked separately).
    """
    state = {}
    for model in apps.get_models():
        if model is AuditRecord:
            continue
        table = model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT COUNT(*) FROM "{table}"')
            state[table] = cursor.fetchone()[0]
    for model in (
        apps.get_model("repos", "Repo"),
        apps.get_model("accounts", "Membership"),
        apps.get_model("accounts", "User"),
        apps.get_model("accounts", "Group"),
    ):
        state[model._meta.db_table + ":rows"] = tuple(model.objects.order_by("pk").values_list())
    return state


@pytest.fixture
def sweep_world(devcloud):
    """Group A with one member and nothing else; group B with a repo on the devcloud and an
    image."""
    # B's objects are made first and A owns nothing but its membership, so an id of B's can never
    # also name one of A's objects by accident.
    group_b = add_group(f"{B_MARKER}-group")
    group_a = add_group("alpha-sweep")
    make_user("Sweep Manager B", group=group_b, role="manager")
    member_a = make_user("Sweep Member A", group=group_a)
    repo = repo_from_cloud_entry(
        group_b,
        f"{B_MARKER}-repo",
        devcloud.cloud_config("devcloud-2-p2"),
        read_ca=lambda path: open(path).read(),
    )
    save_repo(repo)
    with get_driver(
        RepoConnection.from_clouds_yaml(devcloud.cloud_config("devcloud-2-p2"))
    ) as cloud:
        image = cloud.create_and_write(
            {
                "name": f"{B_MARKER}-image",
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "private",
            },
            [b"sweep" * 1000],
        )
        poll_repos([repo])
        forget_cached_matrices()
        matrix = group_matrix(group_b)
        rows = matrix.rows
        manager_b = group_b.memberships.get().user
        # A plan and a (never run) job of B's, so their pages and actions are swept too.
        plan = create_plan(
            group_b, manager_b, [Change(rows[0].id, repo.pk, "delete")], matrix.version
        )
        (job,) = submit_delete(
            group_b, images=Image.objects.filter(repo=repo), requester=manager_b
        ).new_jobs
        yield member_a, group_b, repo, rows, cloud, [plan.pk, job.pk]
        cloud.delete(image.id)


def _b_identifiers(group_b, repo, rows, others) -> list[str]:
    ids = {str(group_b.pk), str(repo.pk), *map(str, others)}
    ids.update(row.id for row in rows)
    return sorted(ids)


def _api_methods() -> dict[str, set[str]]:
    """Path template → HTTP methods, from the OpenAPI schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {path: set(ops) & set(METHODS) for path, ops in schema["paths"].items()}


def test_member_of_a_cannot_see_or_change_anything_of_group_b(sweep_world):
    member_a, group_b, repo, rows, cloud, others = sweep_world
    client = client_for(member_a)
    client.raise_request_exception = False  # a crash is reported as a 5xx, with the others
    identifiers = _b_identifiers(group_b, repo, rows, others)
    routes = sorted(set(_walk(get_resolver().url_patterns)))
    api_methods = _api_methods()
    cloud_before = sorted((i.id, i.name, i.status, i.visibility) for i in cloud.list_images())
    db_before = _snapshot()
    audit_before = AuditRecord.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    body = {
        "group": group_b.pk,
        "repo": repo.pk,
        "repos": [repo.pk],
        "name": "x",
        "row": rows[0].id,
        "changes": [{"row": rows[0].id, "repo": repo.pk, "action": "delete"}],
    }

    problems, tried = [], 0
    for route in routes:
        params_in_path = "<" in route or "(?P" in route
        for value in identifiers if params_in_path else [None]:
            path = _fill(route, value) if value else _fill(route, "")
            if path is None:
                continue
            template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", "/" + route)
            methods = (
                api_methods.get(template, set(METHODS))
                if path.startswith("/api/")
                else set(METHODS)
            )
            for method in sorted(methods):
                for query in ("", f"?group={group_b.pk}"):
                    tried += 1
                    send = getattr(client, method)
                    response = (
                        send(path + query)
                        if method == "get"
                        else send(path + query, data=body, content_type="application/json")
                    )
                    text = response.content.decode(errors="replace")
                    if response.status_code >= 500:
                        problems.append(f"{method.upper()} {path}{query}: {response.status_code}")
                    elif B_MARKER in text:
                        problems.append(f"{method.upper()} {path}{query}: shows group B's data")
                    elif params_in_path and response.status_code not in (400, 403, 404, 405):
                        problems.append(
                            f"{method.upper()} {path}{query}: answered {response.status_code}"
                        )
    assert tried > 100, "the sweep found too few URLs to be meaningful"
    assert not problems, "\n".join(problems)
    assert _snapshot() == db_before, "a refused request changed the database"
    new_audit = AuditRecord.objects.filter(pk__gt=audit_before)
    assert set(new_audit.values_list("outcome", flat=True)) <= {audit.REFUSED}
    assert (
        sorted((i.id, i.name, i.status, i.visibility) for i in cloud.list_images()) == cloud_before
    )
