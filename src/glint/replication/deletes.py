"""Deleting images in a cloud: a planned delete, a cancelled copy's leftovers, an orphan.

Each delete asks the cloud again right before it writes, because whoever decided on it (the
planner, a cancel, the orphan reconciler) judged an inventory, and the cloud may have changed
since: an image protected or handed to another project meanwhile is refused, not deleted, and
an image that is already gone counts as deleted. Everything here takes a driver and plain
values; the jobs app turns its rows into those and records what comes back.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable

from glint.clouds import CloudDriver, CloudError, NotFound
from glint.replication.errors import ImageProtected, NotOwned
from glint.replication.properties import GLINT_SOURCE_ID

__all__ = ["STUCK_STATUSES", "DeleteOutcome", "delete_image", "discard_image", "remove_orphan"]

#: Cloud statuses of an image whose data never finished arriving.
STUCK_STATUSES = ("queued", "saving", "importing")


class DeleteOutcome(str, enum.Enum):
    """How a delete ended when it did not fail (the value is what a job target records)."""

    DELETED = "deleted"  # it was there, and the cloud no longer lists it
    GONE = "gone"  # it was not there any more: nothing to do
    KEPT = "kept"  # (orphans) it is no longer stuck or not Glint's: left alone


def delete_image(
    driver: CloudDriver,
    image_id: str,
    *,
    repo_name: str,
    project_id: str | None = None,
    on_verifying: Callable[[], None] = lambda: None,
) -> DeleteOutcome:
    """Delete one image a person planned to delete, if the cloud still allows it.

    Args:
        driver: A driver for the image's repo.
        image_id: The image.
        repo_name: The repo's name, for the messages.
        project_id: The project the repo's credentials reach (None: ask the cloud).
        on_verifying: Called once the cloud accepted the delete, before it is checked.

    Returns:
        ``DELETED``, or ``GONE`` if the image was not there.

    Raises:
        ImageProtected: The image is protected now.
        NotOwned: The image belongs to another project.
        CloudError: The cloud failed, or still lists the image after the delete.
    """
    try:
        record = driver.get_image(image_id)
    except NotFound:
        return DeleteOutcome.GONE
    if record.protected:
        raise ImageProtected(f"image {record.id} is protected in {repo_name}: not deleted")
    if record.owner != (project_id or driver.project_id()):
        raise NotOwned(
            f"image {record.id} belongs to another project, not {repo_name}'s: not deleted"
        )
    driver.delete(image_id)
    on_verifying()
    try:
        driver.get_image(image_id)
    except NotFound:
        return DeleteOutcome.DELETED
    raise CloudError(f"image {image_id} is still listed after delete")


def discard_image(driver: CloudDriver, image_id: str) -> None:
    """Delete what a cancelled (or abandoned) copy created at a target; gone already is fine.

    Raises:
        CloudError: The cloud failed (the orphan reconciler deletes the image later).
    """
    with contextlib.suppress(NotFound):
        driver.delete(image_id)


def remove_orphan(driver: CloudDriver, image_id: str) -> DeleteOutcome:
    """Delete a Glint-made image that no job owns, if the cloud says it is still stuck.

    The inventory named it as a candidate; the cloud is asked again, so an image whose data
    arrived meanwhile, or that is not Glint's (no ``glint_source_id``), is kept.

    Returns:
        ``DELETED``, ``GONE`` (not there any more) or ``KEPT``.

    Raises:
        CloudError: The cloud failed (the next round tries again).
    """
    try:
        record = driver.get_image(image_id)
        if record.status not in STUCK_STATUSES or not record.properties.get(GLINT_SOURCE_ID):
            return DeleteOutcome.KEPT
        driver.delete(image_id)
    except NotFound:
        return DeleteOutcome.GONE
    return DeleteOutcome.DELETED
