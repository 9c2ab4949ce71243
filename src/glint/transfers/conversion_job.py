"""The ``convert`` kind of job: a matrix row's bytes in the disk format another cloud imports.

``GET /api/v1/images/{id}/download/?format=vmdk`` (and the image page's format links) start one
when the cache holds no such conversion yet (``glint.transfers.services.prepare_conversion``).
The job reads the image once from a repo that holds it into the content cache, verified against
the cloud's hash (``glint.replication.cache_image``), then converts it there
(``glint.replication.convert``); the download is then served from the cache. Its one target
stands for the file being made (no repo): its progress is the read, then the conversion, each
counted as half of the image's size.

Named in the jobs app's table of kinds, so a conversion is claimed, leased, retried and shown like
every other job; it writes to no cloud, so a cancel or a crash leaves nothing but what the
cache removes itself (an abandoned spool).
"""

from __future__ import annotations

import threading

from django.utils import timezone

from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import content_cache, fail_targets, open_driver, save_target
from glint.replication import (
    CloudError,
    ReplicationError,
    TargetState,
    cache_image,
    convert,
)

__all__ = ["run_conversion"]


def run_conversion(job: Job, todo: list[JobTarget], cancel: threading.Event) -> None:
    """Bring the job's source image into the cache and convert it to ``options["format"]``."""
    if job.source_repo is None:
        fail_targets(todo, CloudError("the repo the image was read from was removed"))
        return
    target_format = job.options["format"]
    cache = content_cache()
    progress = _Progress(todo)
    try:
        with open_driver(job.source_repo) as cloud:
            record, entry = cache_image(
                cloud,
                job.source_image_id,
                cache,
                progress=lambda done, total: progress.at(0, done, total),
                cancel=cancel,
            )
        progress.size = record.size or entry.size
        if not job.sha256:
            Job.objects.filter(pk=job.pk).update(sha256=entry.sha256)
        convert(
            cache,
            entry,
            record.disk_format,
            target_format,
            progress=lambda done, total: progress.at(1, done, total),
            cancel=cancel,
        )
    except (CloudError, ReplicationError) as exc:
        fail_targets(todo, exc)
        return
    for target in todo:
        save_target(
            target,
            state=TargetState.DONE.value,
            outcome="converted",
            bytes_done=progress.size,
            bytes_total=progress.size,
            finished=timezone.now(),
            error_code="",
            error="",
        )


class _Progress:
    """Writes the targets' progress, at most once a percent, in bytes of the source image: the
    read counts for the first half, the conversion for the second."""

    def __init__(self, targets: list[JobTarget]):
        self.targets, self.size, self.percent = targets, 0, -1

    def at(self, phase: int, done: int, total: int) -> None:
        if phase == 0:
            self.size = total
        percent = (phase * 100 + (done * 100 // total if total else 0)) // 2
        if percent == self.percent or not self.size:
            return
        self.percent = percent
        for target in self.targets:
            save_target(
                target,
                state=TargetState.WRITING.value,
                bytes_done=self.size * percent // 100,
                bytes_total=self.size,
            )
