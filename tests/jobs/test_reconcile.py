"""The orphan reconciler against the devcloud: a Glint-made image stuck in ``queued`` that no
live job names is deleted, after the cloud is asked again; anything else is left alone."""

from __future__ import annotations

import pytest

from glint.inventory.poller import poll_repos
from glint.jobs.reconcile import remove_orphans
from tests.jobs.images import driver_for, images_named

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]


def test_a_stuck_glint_image_no_job_owns_is_removed_and_others_stay(
    devcloud, repos, image_name, settings
):
    settings.GLINT_JOB_ORPHAN_GRACE = 0
    fields = {"name": image_name, "disk_format": "raw", "container_format": "bare"}
    with driver_for(devcloud, "devcloud-2") as cloud:
        orphan = cloud.create_image({**fields, "glint_source_id": "gone-source"}).id  # no data
        foreign = cloud.create_image(fields).id  # stuck too, but not Glint's
    poll_repos(repos)

    removed = remove_orphans()
    assert (repos[1].pk, orphan) in removed and (repos[1].pk, foreign) not in removed
    assert [image.id for image in images_named(devcloud, image_name)["devcloud-2"]] == [foreign]
