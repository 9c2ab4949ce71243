"""The engine's deletes: a planned delete's refusals and re-checks, a cancelled copy's clean-up
and an orphan's removal.

The fake cloud of ``fakes.py`` stands in for a cloud here because each test needs the cloud to
change between the planner's look and the delete (protected, handed to another project,
already gone, still listed after the delete): states a real Glance reaches only by a second
actor at the right moment. The jobs tests run the same paths against the devcloud.
"""

from __future__ import annotations

import pytest

from glint.replication import (
    CloudError,
    DeleteOutcome,
    ImageProtected,
    NotOwned,
    delete_image,
    discard_image,
    remove_orphan,
    rename_image,
)
from tests.replication.fakes import FakeCloud, FakeDriver


def _cloud_with(**fields) -> tuple[FakeCloud, str]:
    cloud = FakeCloud()
    return cloud, cloud.add(b"x" * 100, **fields)


def test_delete_removes_the_image_and_checks_it_is_gone():
    cloud, image_id = _cloud_with()
    steps = []
    outcome = delete_image(
        cloud.driver(),
        image_id,
        repo_name="r",
        project_id="proj",
        on_verifying=lambda: steps.append(image_id in cloud.images),
    )
    assert outcome is DeleteOutcome.DELETED
    assert steps == [False]  # told "verifying" once the cloud took the delete
    assert image_id not in cloud.images


def test_delete_of_an_image_gone_meanwhile_is_done_without_writing():
    cloud = FakeCloud()
    assert delete_image(cloud.driver(), "vanished", repo_name="r") is DeleteOutcome.GONE


def test_delete_refuses_an_image_protected_since_the_plan():
    cloud, image_id = _cloud_with(protected=True)
    with pytest.raises(ImageProtected, match="protected in r: not deleted") as caught:
        delete_image(cloud.driver(), image_id, repo_name="r", project_id="proj")
    assert caught.value.code == "protected" and not caught.value.retryable
    assert image_id in cloud.images


def test_delete_refuses_another_projects_image_asking_the_cloud_for_the_project():
    """Without a known project id the engine asks the cloud (the fake's project is "proj")."""
    cloud, image_id = _cloud_with(owner="someone-else")
    with pytest.raises(NotOwned, match="belongs to another project, not r's") as caught:
        delete_image(cloud.driver(), image_id, repo_name="r")
    assert caught.value.code == "not_owned"
    assert image_id in cloud.images


class _DeleteIgnored(FakeDriver):
    """A cloud that accepts a delete and keeps listing the image."""

    def delete(self, image_id: str) -> None:
        pass


def test_delete_fails_when_the_cloud_still_lists_the_image():
    cloud, image_id = _cloud_with()
    with pytest.raises(CloudError, match="still listed after delete"):
        delete_image(_DeleteIgnored(cloud), image_id, repo_name="r", project_id="proj")


def test_discarding_a_cancelled_copy_deletes_it_and_accepts_it_gone():
    cloud, image_id = _cloud_with(status="saving")
    discard_image(cloud.driver(), image_id)
    assert image_id not in cloud.images
    discard_image(cloud.driver(), image_id)  # gone already: nothing to do


@pytest.mark.parametrize(
    ("fields", "outcome"),
    [
        ({"glint_source_id": "src"}, DeleteOutcome.DELETED),
        ({}, DeleteOutcome.KEPT),  # not Glint's
    ],
)
def test_orphan_still_stuck_is_deleted_only_if_glint_made_it(fields, outcome):
    cloud = FakeCloud()
    image_id = cloud.add(b"", **fields)
    cloud.images[image_id]["status"] = "saving"  # its data never finished arriving
    assert remove_orphan(cloud.driver(), image_id) is outcome
    assert (image_id in cloud.images) == (outcome is DeleteOutcome.KEPT)


def test_orphan_whose_data_arrived_since_the_poll_is_kept():
    cloud, image_id = _cloud_with(glint_source_id="src")  # active now
    assert remove_orphan(cloud.driver(), image_id) is DeleteOutcome.KEPT
    assert image_id in cloud.images


def test_orphan_gone_since_the_poll_counts_as_removed():
    assert remove_orphan(FakeCloud().driver(), "vanished") is DeleteOutcome.GONE


def test_rename_changes_the_name_in_place():
    cloud, image_id = _cloud_with(name="old")
    rename_image(cloud.driver(), image_id, "new")
    assert cloud.images[image_id]["name"] == "new"
