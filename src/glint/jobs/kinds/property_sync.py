"""The ``property_sync`` kind: make each target copy's properties equal to its source's, without
copying bytes (the image page's "Make properties equal")."""

from __future__ import annotations

import threading

from django.utils import timezone

from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import fail_targets, for_each_target, open_driver, save_target
from glint.replication import CloudDriver, CloudError, TargetState, sync_properties

__all__ = ["run"]


def run(job: Job, todo: list[JobTarget], cancel: threading.Event) -> None:
    """Read the source image once, then bring each target copy in ``todo`` in line with it."""
    if job.source_repo is None:
        fail_targets(todo, CloudError("the source repo was removed"))
        return
    try:
        with open_driver(job.source_repo) as source:
            record = source.get_image(job.source_image_id)
    except CloudError as exc:
        fail_targets(todo, exc)
        return

    def sync_one(target: JobTarget, cloud: CloudDriver) -> None:
        result = sync_properties(record, cloud, target.image_id)
        save_target(
            target,
            state=TargetState.DONE.value,
            outcome="synced" if result.changed else "unchanged",
            warnings=list(result.warnings),
            finished=timezone.now(),
            error_code="",
            error="",
        )

    for_each_target(todo, cancel, sync_one)
