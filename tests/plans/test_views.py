"""The matrix's tick → plan → apply pages, the live cells partial, and "Keep on all repos"."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.utils import timezone

from glint.inventory.models import Image
from glint.jobs.models import Job, JobTarget
from glint.plans.models import KeepEverywhere, Plan
from glint.plans.services import enforce_keep_everywhere
from glint.repos.models import Repo
from tests.plans.helpers import add_image, add_repo, bump, row_of, version

pytestmark = pytest.mark.django_db


def cell(row, repo) -> str:
    return f"{row.id}:{repo.pk}"


def test_the_matrix_offers_a_checkbox_per_cell_and_sends_the_version_it_shows(world):
    group, (one, two, three) = world["group"], world["repos"]
    row = row_of(group, "centos")
    page = world["client"].get(f"/images/?group={group.pk}").content.decode()
    assert f'name="inventory_version" value="{version(group)}"' in page
    for repo, ticked in ((one, True), (two, True), (three, False)):
        box = re.search(
            r'<input type="checkbox" form="apply-form" name="cell" '
            rf'value="{cell(row, repo)}"( checked)?',
            page,
        )
        assert box and bool(box.group(1)) == ticked
    assert page.count(f'name="was" value="{row.id}:') == 2
    assert "Apply changes" in page


def test_tick_untick_plan_confirm_apply(world):
    group, (one, two, three) = world["group"], world["repos"]
    row, client = row_of(group, "centos"), world["client"]
    # Ticked three (copy), unticked two (delete), left one as it was.
    response = client.post(
        "/plans/",
        {
            "group": group.pk,
            "inventory_version": version(group),
            "cell": [cell(row, one), cell(row, three)],
            "was": [cell(row, one), cell(row, two)],
        },
    )
    plan = Plan.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/plans/{plan.pk}/"
    assert [(i.action, i.repo, i.status) for i in plan.items.all()] == [
        ("copy", three, "planned"),
        ("delete", two, "planned"),
    ]
    page = client.get(f"/plans/{plan.pk}/").content.decode()
    assert "Apply: 1 copy, 1 delete" in page
    applied = client.post(f"/plans/{plan.pk}/apply/")
    assert applied.status_code == 302 and applied["Location"] == f"/images/?group={group.pk}"
    assert sorted(Job.objects.values_list("kind", flat=True)) == ["copy", "delete"]
    matrix = client.get(f"/images/?group={group.pk}").content.decode()
    assert 'id="live-cells" hx-get=' in matrix  # the page follows the jobs
    assert re.search(rf'<td id="cell-{row.id}-{three.pk}" class="cell queued"', matrix)
    assert re.search(rf'<td id="cell-{row.id}-{two.pk}" class="cell deleting"', matrix)
    assert f'name="watch" value="{cell(row, three)}"' in matrix
    assert (
        client.post(f"/plans/{plan.pk}/apply/").status_code == 302
    )  # again: refused with a message
    assert Job.objects.count() == 2


def test_nothing_changed_plans_nothing(world):
    group = world["group"]
    response = world["client"].post(
        "/plans/", {"group": group.pk, "inventory_version": version(group)}
    )
    assert response.status_code == 302
    assert not Plan.objects.exists()


def test_refusals_are_shown_with_their_reasons(world):
    group, (one, two, _three) = world["group"], world["repos"]
    row = row_of(group, "centos")
    world["client"].post(
        "/plans/",
        {
            "group": group.pk,
            "inventory_version": version(group),
            "cell": [],
            "was": [cell(row, one), cell(row, two)],
        },
    )
    page = world["client"].get(f"/plans/{Plan.objects.get().pk}/").content.decode()
    assert "Refused (2)" in page
    assert page.count("not deleted: it is the last copy in the group") == 2
    assert "Nothing in this plan can be done." in page


def test_live_cells_follow_a_job_and_reload_the_page_when_it_is_over(world):
    group, three = world["group"], world["repos"][2]
    row = row_of(group, "centos")
    world["client"].post(
        "/plans/",
        {
            "group": group.pk,
            "inventory_version": version(group),
            "cell": [cell(row, three)],
            "was": [],
        },
    )
    world["client"].post(f"/plans/{Plan.objects.get().pk}/apply/")
    url = f"/plans/live/?group={group.pk}&watch={cell(row, three)}"
    live = world["client"].get(url, HTTP_HX_REQUEST="true")
    body = live.content.decode()
    assert "HX-Refresh" not in live
    assert f'<td id="cell-{row.id}-{three.pk}" class="cell queued" hx-swap-oob="true">' in body
    assert '"idle": 0' in body
    assert 'hx-trigger="every 2s"' in body
    job = Job.objects.get()
    job.targets.update(state="writing", bytes_done=300, bytes_total=1000)
    job.__class__.objects.filter(pk=job.pk).update(state="running")
    assert "copying 30%" in world["client"].get(url).content.decode()
    Job.objects.filter(pk=job.pk).update(
        state="failed", error="the target Glance did not answer", finished=timezone.now()
    )
    job.targets.update(state="failed", error="the target Glance did not answer")
    assert "HX-Refresh" not in world["client"].get(
        url
    )  # one idle poll: the job's poll may be on its way
    assert world["client"].get(url + "&idle=1")["HX-Refresh"] == "true"
    page = world["client"].get(f"/images/?group={group.pk}").content.decode()
    assert "the target Glance did not answer" in page and ">Retry</button>" in page
    retried = world["client"].post(
        "/jobs/retry-cell/", {"group": group.pk, "cell": cell(row, three)}
    )
    assert retried.status_code == 302
    assert Job.objects.get().state == "queued"


def test_a_failed_cell_keeps_its_reason_and_retry_after_a_copy_makes_the_row_key_stronger(world):
    """The job names its row by the content key of planning time; a copy with Glint's sha256 in
    another repo makes the row's key, and so its id, stronger. The failure must stay in its cell."""
    group, (_one, two, three) = world["group"], world["repos"]
    before = row_of(group, "centos")
    world["client"].post(
        "/plans/",
        {
            "group": group.pk,
            "inventory_version": version(group),
            "cell": [cell(before, three)],
            "was": [],
        },
    )
    world["client"].post(f"/plans/{Plan.objects.get().pk}/apply/")
    Job.objects.update(
        state="failed", error="the target Glance did not answer", finished=timezone.now()
    )
    JobTarget.objects.update(state="failed", error="the target Glance did not answer")
    Image.objects.filter(repo=two, name="centos").update(
        glint_sha256=hashlib.sha256(b"centos").hexdigest()
    )
    bump(two)

    after = row_of(group, "centos")
    assert after.id != before.id and after.content_key.startswith("sha256:")
    page = world["client"].get(f"/images/?group={group.pk}").content.decode()
    failed = page[page.index(f'<td id="cell-{after.id}-{three.pk}"') :]
    assert failed.startswith(f'<td id="cell-{after.id}-{three.pk}" class="cell failed"')
    assert (
        "the target Glance did not answer" in failed[:1000] and ">Retry</button>" in failed[:1500]
    )
    world["client"].post("/jobs/retry-cell/", {"group": group.pk, "cell": cell(after, three)})
    assert Job.objects.get().state == "queued"


def test_keep_on_all_repos_copies_to_every_repo_that_lacks_the_row_also_later(world):
    group, (_one, _two, three) = world["group"], world["repos"]
    row = row_of(group, "centos")
    world["client"].post(f"/plans/keep/{row.id}/", {"keep": "1"})
    assert KeepEverywhere.objects.filter(group=group, name="centos").exists()
    (job,) = Job.objects.all()
    assert [t.repo for t in job.targets.all()] == [three]
    assert enforce_keep_everywhere(group) == []  # already queued: nothing new
    four = add_repo(group, "four", "project-four")
    five = add_repo(group, "five", "project-five")
    Repo.objects.filter(pk=five.pk).update(
        last_poll_ok=False, last_poll_error="Glance did not answer"
    )
    (new_job,) = Job.objects.filter(pk__in=enforce_keep_everywhere(group))
    assert [t.repo for t in new_job.targets.all()] == [four]
    flag = KeepEverywhere.objects.get()
    assert flag.unreachable == [
        {"repo": five.pk, "name": "five", "reason": "Glance did not answer"}
    ]
    page = world["client"].get(f"/images/?group={group.pk}").content.decode()
    assert "kept on all repos" in page and "could not reach five" in page
    world["client"].post(f"/plans/keep/{row.id}/", {"keep": "0"})
    assert not KeepEverywhere.objects.exists()


def test_jobs_pages_filter_and_show_targets(world):
    group, (_one, _two, three) = world["group"], world["repos"]
    row = row_of(group, "centos")
    world["client"].post(
        "/plans/",
        {
            "group": group.pk,
            "inventory_version": version(group),
            "cell": [cell(row, three)],
            "was": [],
        },
    )
    world["client"].post(f"/plans/{Plan.objects.get().pk}/apply/")
    job = Job.objects.get()
    listing = (
        world["client"]
        .get(f"/jobs/?group={group.pk}&state=queued&repo={three.pk}")
        .content.decode()
    )
    assert f'id="job-{job.pk}"' in listing
    assert (
        f'id="job-{job.pk}"'
        not in world["client"].get(f"/jobs/?group={group.pk}&state=done").content.decode()
    )
    assert (
        f'id="job-{job.pk}"'
        not in world["client"]
        .get(f"/jobs/?group={group.pk}&requester=nobody-like-this")
        .content.decode()
    )
    detail = world["client"].get(f"/jobs/{job.pk}/").content.decode()
    assert "three" in detail and ">Cancel</button>" in detail and 'hx-trigger="every 2s"' in detail
    world["client"].post(f"/jobs/{job.pk}/cancel/")
    assert Job.objects.get().state == "cancelled"
    assert ">Retry</button>" in world["client"].get(f"/jobs/{job.pk}/").content.decode()


def test_the_conflicts_page_deletes_one_copy_of_a_duplicate_under_the_delete_rules(world):
    group, one = world["group"], world["repos"][0]
    second = add_image(one, "centos")  # the same bytes twice in repo one: a duplicate
    protected = add_image(one, "centos", protected=True)
    page = world["client"].get(f"/images/conflicts/?group={group.pk}").content.decode()
    (action,) = set(re.findall(r'action="(/plans/conflicts/[^"]+/delete/)"', page))
    assert page.count("Delete this copy") == 3
    world["client"].post(action, {"image": protected.pk})
    assert not Job.objects.exists()
    refused = world["client"].get(f"/images/conflicts/?group={group.pk}").content.decode()
    assert "not deleted: it is protected in one" in refused
    world["client"].post(action, {"image": second.pk})
    (job,) = Job.objects.all()
    assert (job.kind, [(t.repo, t.image_id) for t in job.targets.all()]) == (
        "delete",
        [(one, second.image_id)],
    )
