"""The ``copy`` kind: one image from a source repo to the job's targets, verified."""

from __future__ import annotations

import contextlib
import threading

from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import (
    TargetWriter,
    copy_to_targets,
    fail_targets,
    open_driver,
    record_outcomes,
)
from glint.replication import CloudError, CopySource, unsafe_reason
from glint.repos.choices import CloudKind

__all__ = ["run"]


def run(job: Job, todo: list[JobTarget], cancel: threading.Event) -> None:
    """Copy the job's source image to the targets in ``todo`` and record each one."""
    if job.source_repo is None:
        fail_targets(todo, CloudError("the source repo was removed"))
        return
    options = job.options or {}
    by_key = {str(t.pk): t for t in todo}

    def open_source(stack: contextlib.ExitStack) -> CopySource:
        # A qcow2 naming a backing or data file is refused before any target is created.
        return CopySource(
            stack.enter_context(open_driver(job.source_repo)),
            job.source_image_id,
            repo_ref=str(job.source_repo.pk),
            inspect_head=unsafe_reason,
        )

    result = copy_to_targets(
        todo,
        open_source,
        visibility=options.get("visibility"),
        options=options,
        observer=TargetWriter(by_key),
        cancel=cancel,
        disk_format=_stored_format(job),
    )
    if result is None:
        return
    if result.sha256 and not job.sha256:
        Job.objects.filter(pk=job.pk).update(sha256=result.sha256)
    record_outcomes(by_key, result)


def _stored_format(job: Job) -> str | None:
    """The format the copy is stored in: the group's for copies from a cloud that stores raw
    disks only (``Group.raw_copies_format``; a target that takes any format converts to it),
    else the source's (None)."""
    if CloudKind(job.source_repo.kind).stores_raw_only:
        return job.group.raw_copies_format
    return None
