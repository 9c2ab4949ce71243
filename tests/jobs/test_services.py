"""Submitting jobs against a real inventory: idempotent requests, and the matrix cells of jobs."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.utils import timezone

from glint.accounts.choices import CopiesRunAt
from glint.inventory.models import Image
from glint.inventory.poller import poll_repos, request_refresh
from glint.jobs import services, states
from glint.jobs.matrix import group_matrix
from glint.jobs.models import Job
from glint.matrix.planning import COPY, Change
from glint.matrix.rows import CellState
from glint.plans import services as plans
from tests.clients import make_user
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.images import delete_named, driver_for, random_chunks, upload
from tests.plans.helpers import row_of, version

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db]


@pytest.fixture
def image_name(devcloud):
    name = f"jobs-svc-{uuid.uuid4().hex[:8]}"
    yield name
    delete_named(devcloud, name)


def test_the_same_copy_requested_twice_is_one_job(devcloud, group_a, repos, image_name):
    one, two, three = repos
    image_id = upload(devcloud, "devcloud-1", image_name, 64 * 1024)
    poll_repos(repos)
    source = Image.objects.get(repo=one, image_id=image_id)

    first = services.submit_copy(group_a, source=source, targets=[two])
    again = services.submit_copy(group_a, source=source, targets=[two, three])

    (first_job,) = first.new_jobs
    assert [t.repo_id for t in first_job.targets.all()] == [two.pk]
    assert again.existing == {two.pk: first_job}, "the copy to repo two is already under way"
    (again_job,) = again.new_jobs
    assert [t.repo_id for t in again_job.targets.all()] == [three.pk], (
        "only the new target became work"
    )
    assert not services.submit_copy(group_a, source=source, targets=[two, three]).created
    assert Job.objects.count() == 2

    # The matrix shows both copies queued, over the polled cells (which keep their copies).
    overlays = services.cell_overlays(group_a)
    row = next(r for r in group_matrix(group_a, overlays=overlays).rows if r.name == image_name)
    assert (
        row.cells[two.pk].state == CellState.QUEUED
        and row.cells[three.pk].state == CellState.QUEUED
    )
    assert row.cells[one.pk].state == CellState.PRESENT and row.cells[one.pk].copies


def test_a_copy_to_a_repo_that_holds_the_image_is_no_work(devcloud, group_a, repos, image_name):
    one, two, _three = repos
    image_id = upload(devcloud, "devcloud-1", image_name, 64 * 1024, seed="same")
    upload(devcloud, "devcloud-2", image_name, 64 * 1024, seed="same")
    poll_repos(repos)

    submission = services.submit_copy(
        group_a, source=Image.objects.get(repo=one, image_id=image_id), targets=[two]
    )

    assert not submission.created and submission.present == [two.pk]
    assert "nothing to do" in submission.describe()
    assert not Job.objects.exists()


def test_refusals_say_why(devcloud, group_a, group_b, repos, image_name):
    one, two, _three = repos
    other = add_devcloud_repo(devcloud, group_b, "devcloud-2")
    image_id = upload(devcloud, "devcloud-1", image_name, 4096)
    poll_repos(repos)
    source = Image.objects.get(repo=one, image_id=image_id)
    with pytest.raises(services.JobRefused, match="not one of group"):
        services.submit_copy(group_a, source=source, targets=[other])
    with pytest.raises(services.JobRefused, match="cannot also be a target"):
        services.submit_copy(group_a, source=source, targets=[one, two])
    with pytest.raises(services.JobRefused, match="conflict policy"):
        services.submit_copy(group_a, source=source, targets=[two], conflict_policy="overwrite")


def test_a_live_job_still_speaks_for_its_row_after_a_copy_made_the_row_key_stronger(
    devcloud, group_a, repos, image_name
):
    """A job names its row by the content key at planning time; a verified copy (Glint's sha256)
    landing elsewhere makes the row's key stronger. The matrix must still show the job's cell, and
    asking again must find the job instead of starting a second copy into the same repo."""
    one, two, three = repos
    size = 64 * 1024
    image_id = upload(devcloud, "devcloud-1", image_name, size, seed="stronger")
    poll_repos(repos)
    source = Image.objects.get(repo=one, image_id=image_id)
    first = services.submit_copy(group_a, source=source, targets=[three])

    copy_id = upload(devcloud, "devcloud-2", image_name, size, seed="stronger")
    sha256 = hashlib.sha256(b"".join(random_chunks("stronger", size))).hexdigest()
    with driver_for(devcloud, "devcloud-2") as driver:
        driver.set_properties(copy_id, set={"glint_sha256": sha256})
    poll_repos(repos)
    assert (
        next(r for r in group_matrix(group_a, overlays={}).rows if r.name == image_name).content_key
        == f"sha256:{sha256}"
    )

    row = next(
        r
        for r in group_matrix(group_a, overlays=services.cell_overlays(group_a)).rows
        if r.name == image_name
    )
    assert row.cells[three.pk].state == CellState.QUEUED
    again = services.submit_copy(group_a, source=source, targets=[three])
    assert not again.created and again.existing == {three.pk: first.new_jobs[0]}


def place(repos, *sites):
    for repo, site in zip(repos, sites):
        repo.site = site
        repo.save(update_fields=["site"])


def test_a_copy_to_repos_at_two_sites_is_one_job_per_site(devcloud, group_a, repos, image_name):
    one, two, three = repos
    place(repos, "here", "a", "b")
    image_id = upload(devcloud, "devcloud-1", image_name, 4096)
    poll_repos(repos)
    source = Image.objects.select_related("repo").get(repo=one, image_id=image_id)

    submission = services.submit_copy(group_a, source=source, targets=[two, three])

    by_site = {job.site: [t.repo_id for t in job.targets.all()] for job in submission.new_jobs}
    assert by_site == {"a": [two.pk], "b": [three.pk]}, "each site's worker does its own targets"
    assert all(job.source_image_id == image_id for job in submission.new_jobs)
    assert "(site a)" in submission.describe() and "(site b)" in submission.describe()
    again = services.submit_copy(group_a, source=source, targets=[two, three])
    assert not again.created and set(again.existing) == {two.pk, three.pk}

    # Deleting copies at two sites: one job per site too.
    for job in submission.new_jobs:
        services.cancel(job, None)
    copies = [upload(devcloud, cloud, image_name, 4096) for cloud in ("devcloud-2", "devcloud-3")]
    poll_repos(repos)
    deleted = services.submit_delete(
        group_a, images=Image.objects.filter(image_id__in=copies).select_related("repo")
    )
    assert sorted(job.site for job in deleted.new_jobs) == ["a", "b"]


def test_a_group_may_run_its_copies_at_the_source_s_site(devcloud, group_a, repos, image_name):
    one, two, three = repos
    place(repos, "here", "a", "b")
    group_a.copies_run_at = CopiesRunAt.SOURCE
    group_a.save()
    image_id = upload(devcloud, "devcloud-1", image_name, 4096)
    poll_repos(repos)
    source = Image.objects.select_related("repo").get(repo=one, image_id=image_id)

    (job,) = services.submit_copy(group_a, source=source, targets=[two, three]).new_jobs

    assert job.site == "here" and {t.repo_id for t in job.targets.all()} == {two.pk, three.pk}


def _a_copy_that_ended_done(devcloud, group, repos, image_name):
    """A copy job from repo one to repo two, marked done (no copy was really made) and asking
    for repo two's poll as a job's end does; repo two."""
    one, two, _three = repos
    image_id = upload(devcloud, "devcloud-1", image_name, 4096)
    poll_repos(repos)
    (job,) = services.submit_copy(
        group, source=Image.objects.get(repo=one, image_id=image_id), targets=[two]
    ).new_jobs
    job.targets.update(state=states.TargetState.DONE.value)
    Job.objects.filter(pk=job.pk).update(state=states.DONE, finished=timezone.now())
    request_refresh([two.pk])
    return two


def test_a_done_copy_keeps_its_cell_until_the_repo_is_polled(devcloud, group_a, repos, image_name):
    """Between a job's end and the poll it asks for, the listing does not hold the new copy yet:
    the cell must not flash back to absent, and must speak for itself again once polled."""
    two = _a_copy_that_ended_done(devcloud, group_a, repos, image_name)

    def cell():
        overlays = services.cell_overlays(group_a)
        row = next(r for r in group_matrix(group_a, overlays=overlays).rows if r.name == image_name)
        return row.cells[two.pk]

    assert cell().state == CellState.VERIFYING and "waiting for the repo" in cell().reason
    poll_repos([two])
    assert cell().state == CellState.ABSENT  # the listing speaks (no copy was really made here)


def test_a_later_jobs_poll_request_does_not_make_a_listed_copy_pending_again(
    devcloud, group_a, repos, image_name
):
    """A second job's end asks for a poll of the same repo within the minute: the first job's
    result was listed already, so its cell is the listing's (here absent: the copy was deleted
    in the cloud meanwhile), and the planner may copy there again."""
    two = _a_copy_that_ended_done(devcloud, group_a, repos, image_name)
    poll_repos([two])  # the poll the job's end asked for
    request_refresh([two.pk])  # another job's end, seconds later

    overlays = services.cell_overlays(group_a)
    row = next(r for r in group_matrix(group_a, overlays=overlays).rows if r.name == image_name)
    assert row.cells[two.pk].state == CellState.ABSENT
    plan = plans.create_plan(
        group_a,
        make_user("Copier Again", group=group_a),
        [Change(row_of(group_a, image_name).id, two.pk, COPY)],
        version(group_a),
    )
    (item,) = plan.items.all()
    assert (item.status, item.reason) == ("planned", ""), "planned again, not 'already queued'"
