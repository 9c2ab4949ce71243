"""The ``delete`` kind: delete an image in each target repo, if its cloud still allows it.

The planner judged an inventory; the engine asks each cloud again right before it deletes
(``glint.replication.delete_image``): a protected image, or one of another project, is refused.
"""

from __future__ import annotations

import threading

from django.utils import timezone

from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import for_each_target, save_target
from glint.replication import CloudDriver, TargetState, delete_image

__all__ = ["run"]


def run(job: Job, todo: list[JobTarget], cancel: threading.Event) -> None:
    """Delete the image of each target in ``todo`` and record how it went."""
    for_each_target(todo, cancel, _delete_one)


def _delete_one(target: JobTarget, cloud: CloudDriver) -> None:
    outcome = delete_image(
        cloud,
        target.image_id,
        repo_name=target.repo_name,
        project_id=_known_project(target),
        on_verifying=lambda: save_target(target, state=TargetState.VERIFYING.value),
    )
    save_target(
        target,
        state=TargetState.DONE.value,
        outcome=outcome.value,
        finished=timezone.now(),
        error_code="",
        error="",
    )


def _known_project(target: JobTarget) -> str | None:
    """The project the repo's credentials reach, as its last poll found (None: not known)."""
    inventory = getattr(target.repo, "inventory", None)
    return inventory.project_id if inventory is not None and inventory.project_id else None
