"""Submitting jobs against a real inventory: idempotent requests, and the matrix cells of jobs."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from glint.inventory.models import Image
from glint.inventory.poller import poll_repos
from glint.jobs import services
from glint.jobs.matrix import group_matrix
from glint.jobs.models import Job
from glint.matrix.rows import CellState
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.images import delete_named, driver_for, random_chunks, upload

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

    assert first.created and [t.repo_id for t in first.job.targets.all()] == [two.pk]
    assert again.existing == {two.pk: first.job}, "the copy to repo two is already under way"
    assert [t.repo_id for t in again.job.targets.all()] == [three.pk], (
        "only the new target became work"
    )
    assert services.submit_copy(group_a, source=source, targets=[two, three]).job is None
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

    assert submission.job is None and submission.present == [two.pk]
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
    assert again.job is None and again.existing == {three.pk: first.job}
