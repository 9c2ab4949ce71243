"""The jobs app's adapter to the replication engine: rows in, engine values and drivers out, and
the engine's hooks and results back into the rows.

Every kind of job (``glint.jobs.kinds``, and the transfers app's upload) opens its drivers,
builds the engine's targets and records each target here, so a target row means the same thing
whoever ran it: a failure carries its code, a message safe to show and, when the error is
transient, the time of its automatic retry. The writes that are no kind of their own go through
here too: the clean-up after a cancel (:func:`discard_unfinished`, called by
``glint.jobs.execution``) and the orphan reconciler's deletes (:func:`remove_orphan_image`).
Drivers come from ``glint.repos.drivers``, the one place that opens them.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from glint.errors import GlintError
from glint.jobs import counters, states
from glint.jobs.models import Job, JobTarget
from glint.replication import (
    CloudDriver,
    CloudError,
    ConflictPolicy,
    ContentCache,
    CopyObserver,
    CopyResult,
    CopySource,
    CopyTarget,
    DeleteOutcome,
    TargetState,
    UnexpectedError,
    copy_image,
    discard_image,
    remove_orphan,
)
from glint.repos.drivers import open_driver

if TYPE_CHECKING:
    from glint.repos.models import Repo

__all__ = [
    "TargetWriter",
    "content_cache",
    "discard_unfinished",
    "fail_target",
    "fail_targets",
    "failure_values",
    "for_each_target",
    "open_copy_targets",
    "open_driver",
    "record_outcomes",
    "remove_orphan_image",
    "retry_delay",
    "save_target",
]

log = logging.getLogger(__name__)

#: Seconds between a target's progress writes (the engine reports far more often).
PROGRESS_INTERVAL = 0.5


def retry_delay(attempts: int) -> float:
    """Seconds before automatic try number ``attempts + 1``: exponential, capped."""
    return min(
        settings.GLINT_JOB_RETRY_BASE * 2 ** max(0, attempts - 1), settings.GLINT_JOB_RETRY_MAX
    )


def save_target(target: JobTarget, **values) -> None:
    """Set ``values`` on the row and on the in-memory object the job run keeps using, and raise
    ``/metrics``' counters for a target's end in the same transaction."""
    with transaction.atomic():
        counters.count_target_end(target, values)
        JobTarget.objects.filter(pk=target.pk).update(**values)
    for name, value in values.items():
        setattr(target, name, value)


def failure_values(target: JobTarget, error: BaseException) -> dict:
    """The row values of a failed target, with an automatic retry if the error is transient."""
    retryable = bool(getattr(error, "retryable", False))
    next_at = None
    if retryable and target.attempts < settings.GLINT_JOB_RETRY_LIMIT:
        next_at = timezone.now() + datetime.timedelta(seconds=retry_delay(target.attempts))
    message = getattr(error, "message", None) or str(error)
    if next_at is None and retryable:
        message += f" (gave up after {target.attempts} attempts)"
    return {
        "state": TargetState.FAILED.value,
        "error_code": getattr(error, "code", "error"),
        "error": message,
        "next_attempt_at": next_at,
        "finished": timezone.now(),
    }


def fail_target(target: JobTarget, error: BaseException, **values) -> None:
    """Record that ``target`` failed with ``error`` (and any other ``values``)."""
    save_target(target, **values, **failure_values(target, error))


def fail_targets(targets: list[JobTarget], error: BaseException) -> None:
    """Record that every one of ``targets`` failed with ``error`` (e.g. the source is gone)."""
    for target in targets:
        fail_target(target, error)


@functools.cache
def content_cache() -> ContentCache:
    """This process's content cache (settings ``cache_dir``, ``cache_quota_bytes``)."""
    return ContentCache(settings.GLINT_CACHE_DIR, quota_bytes=settings.GLINT_CACHE_QUOTA_BYTES)


class TargetWriter(CopyObserver):
    """The engine's hooks, written to the target rows (called in the worker's own thread)."""

    def __init__(self, targets: dict[str, JobTarget]):
        self.targets = targets
        self.started = time.monotonic()
        self.last_write: dict[str, float] = {}

    def image_created(self, target_key: str, image_id: str) -> None:
        # Recorded before a byte is written: a crash from here on leaves an id to clean up.
        JobTarget.objects.filter(pk=int(target_key)).update(image_id=image_id)
        self.targets[target_key].image_id = image_id

    def state_changed(self, target_key: str, state: TargetState) -> None:
        if state in (TargetState.WRITING, TargetState.VERIFYING):
            JobTarget.objects.filter(pk=int(target_key)).update(state=state.value)

    def progress(self, target_key: str | None, code: str, done: int, total: int | None) -> None:
        if target_key is None or code == "copy.verifying":
            return
        now = time.monotonic()
        if now - self.last_write.get(target_key, 0.0) < PROGRESS_INTERVAL and done != total:
            return
        self.last_write[target_key] = now
        rate = done / max(now - self.started, 1e-3)
        JobTarget.objects.filter(pk=int(target_key)).update(
            bytes_done=done, bytes_total=total, rate=rate
        )

    def warning(self, target_key: str | None, message: str) -> None:
        log.info("job target %s: %s", target_key, message)


def open_copy_targets(
    todo: list[JobTarget],
    stack: contextlib.ExitStack,
    *,
    visibility: str | None,
    options: dict,
    disk_format: str | None = None,
) -> list[CopyTarget]:
    """The engine's targets for ``todo``, each with a driver of its own closed by ``stack``,
    each storing the copy as ``disk_format`` (None: the source's; see
    :attr:`CopyTarget.disk_format`).

    A target whose repo was removed fails here; the others go on.
    """
    policy = ConflictPolicy(options.get("conflict_policy") or ConflictPolicy.REPORT.value)
    replaceable = options.get("replace_only")  # {repo pk: image ids}; see CopyTarget
    targets = []
    for target in todo:
        if target.repo is None:
            fail_target(target, CloudError("the target repo was removed"))
            continue
        targets.append(
            CopyTarget(
                key=str(target.pk),
                driver=stack.enter_context(open_driver(target.repo)),
                visibility=visibility,
                policy=policy,
                previous_image_id=target.image_id or None,
                disk_format=disk_format,
                replace_only=None
                if replaceable is None
                else frozenset(replaceable.get(str(target.repo_id), ())),
            )
        )
    return targets


def copy_to_targets(
    todo: list[JobTarget],
    source_of: Callable[[contextlib.ExitStack], CopySource],
    *,
    visibility: str | None,
    options: dict,
    observer: CopyObserver,
    cancel: threading.Event,
    read_without_targets: bool = False,
    disk_format: str | None = None,
) -> CopyResult | None:
    """The skeleton every kind that writes an image's bytes shares (copy, upload): each target
    gets a driver of its own, ``source_of`` opens the source on the same stack, the engine copies
    once to them all, and every driver is closed at the end, whatever happened.

    A target whose repo was removed fails here and the others go on. When none is left, the
    source is read only if ``read_without_targets`` (an upload's bytes must still land in the
    cache for the retry); otherwise nothing is opened and None is returned. ``disk_format``: what
    the targets store the copy as (None: the source's format).
    """
    with contextlib.ExitStack() as stack:
        targets = open_copy_targets(
            todo, stack, visibility=visibility, options=options, disk_format=disk_format
        )
        if not targets and not read_without_targets:
            return None
        return copy_image(
            source_of(stack), targets, cache=content_cache(), observer=observer, cancel=cancel
        )


def record_outcomes(by_key: dict[str, JobTarget], result: CopyResult) -> None:
    """Store the engine's verdict for each target of a copy (or an upload's fan-out)."""
    for key, outcome in result.targets.items():
        target = by_key[key]
        if outcome.state is TargetState.DONE:
            save_target(
                target,
                state=TargetState.DONE.value,
                outcome=outcome.outcome.value,
                image_id=outcome.image_id or target.image_id,
                warnings=outcome.warnings,
                finished=timezone.now(),
                error_code="",
                error="",
                bytes_done=target.bytes_total or outcome.bytes_written,
            )
        elif outcome.state is TargetState.CANCELLED:
            save_target(
                target,
                state=TargetState.CANCELLED.value,
                outcome="cancelled",
                warnings=outcome.warnings,
                finished=timezone.now(),
            )
        else:
            fail_target(
                target, outcome.error or UnexpectedError("no reason"), warnings=outcome.warnings
            )


def for_each_target(
    todo: list[JobTarget], cancel: threading.Event, work: Callable[[JobTarget, CloudDriver], None]
) -> None:
    """Run ``work(target, cloud)`` on each target's cloud until cancelled.

    A target whose repo was removed, or whose cloud raises (or the engine refuses), fails on
    its own; the others go on.
    """
    for target in todo:
        if cancel.is_set():
            return
        if target.repo is None:
            fail_target(target, CloudError("the repo was removed"))
            continue
        try:
            with open_driver(target.repo) as cloud:
                save_target(target, state=TargetState.WRITING.value)
                work(target, cloud)
        except GlintError as exc:
            fail_target(target, exc)


def discard_partial_images(targets: list[JobTarget], label: str) -> None:
    """Delete the images that targets not done recorded (a cancelled or interrupted run), so a
    later run starts them afresh; one the cloud will not delete now is left to the orphan
    reconciler. ``label`` names the job or upload in the log."""
    for target in targets:
        if target.state == TargetState.DONE.value or not target.image_id or target.repo is None:
            continue
        try:
            with open_driver(target.repo) as cloud:
                discard_image(cloud, target.image_id)
            save_target(target, image_id="")
        except CloudError as exc:  # the orphan reconciler deletes it later
            log.warning(
                "%s: could not delete %s in %s: %s", label, target.image_id, target.repo_name, exc
            )


def discard_unfinished(job: Job, targets: list[JobTarget]) -> None:
    """Delete what a cancelled copy (or upload) recorded at targets that are not done, then mark
    those targets cancelled."""
    if job.kind in (states.COPY, states.UPLOAD):
        discard_partial_images(targets, f"job {job.pk}")
    for target in targets:
        if target.state != TargetState.DONE.value:
            save_target(
                target,
                state=TargetState.CANCELLED.value,
                outcome="cancelled",
                next_attempt_at=None,
                finished=target.finished or timezone.now(),
            )


def remove_orphan_image(repo: Repo, image_id: str) -> DeleteOutcome:
    """Delete an image of ``repo`` that no live job owns, if its cloud says it is still stuck.

    Raises:
        CloudError: The cloud failed (the next round tries again).
    """
    with open_driver(repo) as cloud:
        return remove_orphan(cloud, image_id)
