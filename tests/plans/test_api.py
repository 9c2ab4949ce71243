"""``/api/v1/plans/``: the shape the CLI relies on, the rules as the API reports them, and
access."""

from __future__ import annotations

import pytest

from glint.jobs.models import Job
from glint.plans.models import Plan
from tests.clients import client_for, make_user
from tests.plans.helpers import add_image, row_of, version

pytestmark = pytest.mark.django_db

URL = "/api/v1/plans/"


def post_plan(client, group, changes, inventory_version, **extra):
    return client.post(
        URL,
        {"group": group.pk, "changes": changes, "inventory_version": inventory_version, **extra},
        content_type="application/json",
    )


def test_plan_shape_and_verdicts(world):
    group, (one, two, three) = world["group"], world["repos"]
    row = row_of(group, "centos")
    response = post_plan(
        world["client"],
        group,
        [
            {"row": row.id, "repo": three.pk, "action": "copy"},
            {"row": row.id, "repo": two.pk, "action": "copy"},
            {"row": row.id, "repo": two.pk, "action": "delete"},
        ],
        version(group),
    )
    assert response.status_code == 201, response.content
    plan = response.json()
    assert isinstance(plan["id"], int)
    assert [
        {k: item[k] for k in ("row", "repo", "action", "status", "reason")}
        for item in plan["items"]
    ] == [
        {"row": row.id, "repo": three.pk, "action": "copy", "status": "planned", "reason": ""},
        {
            "row": row.id,
            "repo": two.pk,
            "action": "copy",
            "status": "noop",
            "reason": "already there",
        },
        {
            "row": row.id,
            "repo": two.pk,
            "action": "delete",
            "status": "noop",
            "reason": "asked twice in one plan",
        },
    ]
    assert plan["items"][0]["source"]["repo"] == one.pk  # the first repo holding an own copy
    assert plan["state"] == "open" and plan["jobs"] == []


def test_a_delete_of_a_copy_that_changed_since_the_page_was_loaded_is_refused(world):
    group, (one, two, _three) = world["group"], world["repos"]
    shown = version(group)
    row = row_of(group, "centos")
    add_image(
        two, "centos", visibility="private"
    )  # a second copy appeared in two: the page never showed it
    response = post_plan(
        world["client"],
        group,
        [
            {"row": row.id, "repo": two.pk, "action": "delete"},
            {"row": row.id, "repo": one.pk, "action": "delete"},
        ],
        shown,
    )
    items = response.json()["items"]
    assert (items[0]["status"], items[0]["reason"]) == (
        "refused",
        "not deleted: it changed since your page was loaded",
    )
    assert items[1]["status"] == "planned"  # repo one did not change: its delete stands


def test_another_groups_plans_are_404_and_nothing_is_stored(world, group_b):
    outsider = client_for(make_user("Plan Outsider", group=group_b))
    row = row_of(world["group"], "centos")
    response = post_plan(
        outsider,
        world["group"],
        [{"row": row.id, "repo": world["repos"][2].pk, "action": "copy"}],
        version(world["group"]),
    )
    assert response.status_code == 404
    assert not Plan.objects.exists()
    mine = post_plan(
        world["client"],
        world["group"],
        [{"row": row.id, "repo": world["repos"][2].pk, "action": "copy"}],
        version(world["group"]),
    ).json()
    assert outsider.get(f"{URL}{mine['id']}/").status_code == 404
    assert outsider.post(f"{URL}{mine['id']}/apply/").status_code == 404
    assert not Job.objects.exists()


def test_only_admins_force(world):
    row = row_of(world["group"], "centos")
    response = post_plan(
        world["client"],
        world["group"],
        [{"row": row.id, "repo": world["repos"][1].pk, "action": "delete"}],
        version(world["group"]),
        force=True,
    )
    assert response.status_code == 403
    assert not Plan.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        (
            {
                "changes": [{"row": "1-0123456789abcdef", "repo": 1, "action": "move"}],
                "inventory_version": "1.1",
            },
            "changes",
        ),
        ({"changes": [], "inventory_version": "1.1"}, "changes"),
        (
            {"changes": [{"row": "1-0123456789abcdef", "repo": 1, "action": "copy"}]},
            "inventory_version",
        ),
        (
            {
                "changes": [{"row": "not a row", "repo": 1, "action": "copy"}],
                "inventory_version": "1.1",
            },
            "changes",
        ),
    ],
)
def test_malformed_requests_are_400(world, body, field):
    response = world["client"].post(
        URL, {"group": world["group"].pk, **body}, content_type="application/json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_a_malformed_version_is_400(world):
    row = row_of(world["group"], "centos")
    response = post_plan(
        world["client"],
        world["group"],
        [{"row": row.id, "repo": world["repos"][2].pk, "action": "copy"}],
        "yesterday",
    )
    assert response.status_code == 400
    assert "inventory_version" in response.json()["detail"]


def test_apply_creates_the_jobs_once(world):
    group, (one, two, three) = world["group"], world["repos"]
    row = row_of(group, "centos")
    plan = post_plan(
        world["client"],
        group,
        [
            {"row": row.id, "repo": three.pk, "action": "copy"},
            {"row": row.id, "repo": two.pk, "action": "delete"},
        ],
        version(group),
    ).json()
    response = world["client"].post(f"{URL}{plan['id']}/apply/")
    assert response.status_code == 202, response.content
    job_ids = response.json()["jobs"]
    jobs = {job.kind: job for job in Job.objects.filter(pk__in=job_ids)}
    assert sorted(jobs) == ["copy", "delete"]
    assert (jobs["copy"].source_repo, [t.repo for t in jobs["copy"].targets.all()]) == (
        one,
        [three],
    )
    assert [(t.repo, t.image_id) for t in jobs["delete"].targets.all()] == [
        (two, world["images"][1].image_id)
    ]
    assert jobs["copy"].requester == world["member"]
    again = world["client"].post(f"{URL}{plan['id']}/apply/")
    assert again.status_code == 409
    assert Job.objects.count() == 2
    applied = world["client"].get(f"{URL}{plan['id']}/").json()
    assert applied["state"] == "applied" and sorted(applied["jobs"]) == sorted(job_ids)
    assert {item["action"]: item["job"] for item in applied["items"]} == {
        "copy": jobs["copy"].pk,
        "delete": jobs["delete"].pk,
    }


def test_the_same_copy_planned_twice_is_one_job(world):
    group, three = world["group"], world["repos"][2]
    row = row_of(group, "centos")
    first = post_plan(
        world["client"],
        group,
        [{"row": row.id, "repo": three.pk, "action": "copy"}],
        version(group),
    ).json()
    world["client"].post(f"{URL}{first['id']}/apply/")
    second = post_plan(
        world["client"],
        group,
        [{"row": row.id, "repo": three.pk, "action": "copy"}],
        version(group),
    ).json()
    assert (second["items"][0]["status"], second["items"][0]["reason"]) == (
        "noop",
        "already queued",
    )
    assert Job.objects.count() == 1


def test_a_delete_whose_repo_changed_between_plan_and_apply_is_not_done(world):
    group, two = world["group"], world["repos"][1]
    row = row_of(group, "centos")
    plan = post_plan(
        world["client"],
        group,
        [{"row": row.id, "repo": two.pk, "action": "delete"}],
        version(group),
    ).json()
    add_image(two, "other-image")
    assert world["client"].post(f"{URL}{plan['id']}/apply/").json() == {"jobs": []}
    item = world["client"].get(f"{URL}{plan['id']}/").json()["items"][0]
    assert (item["status"], item["reason"]) == (
        "refused",
        "not deleted: it changed since the plan was made",
    )
    assert not Job.objects.exists()
