"""Repairs after crashes: the lease sweeper and the orphan reconciler (``docs/architecture.md``).

- A worker that dies (kill -9, a power cut) stops renewing its job's lease; once it expires the
  sweeper puts the job back to queued, and the next claim redoes its unfinished targets. The
  half-written images of the dead run are known (each target's image id, or for EC2 the
  snapshot being written, was recorded before a byte was written), so the engine deletes or
  reuses them.
- The only gap is a crash between a cloud creating an image and the job recording its id. Such an
  image is Glint-marked (``glint_source_id``; StartSnapshot tags an EC2 snapshot so), stuck in
  ``queued``/``saving`` (the EC2 driver lists an unfinished write so), and no live job names it:
  the orphan reconciler deletes it, after a grace period that covers the recording. A job that
  came to rest with such an image recorded (its clean-up failed) no longer owns it either.
  The delete itself, with its re-check against the cloud, is the engine's
  (``glint.replication.remove_orphan``, through ``glint.jobs.runners``).
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.utils import timezone

from glint.inventory.models import Image
from glint.inventory.poller import request_refresh
from glint.jobs import states
from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import remove_orphan_image
from glint.replication import STUCK_STATUSES, CloudError, DeleteOutcome

__all__ = ["ORPHAN_INTERVAL", "STUCK_STATUSES", "remove_orphans", "sweep_expired_leases"]

log = logging.getLogger(__name__)

#: Seconds between orphan reconciler rounds.
ORPHAN_INTERVAL = 300.0


def sweep_expired_leases() -> int:
    """Put running jobs whose lease expired back to queued; returns how many."""
    swept = Job.objects.filter(state=states.RUNNING, lease_expires__lt=timezone.now()).update(
        state=states.QUEUED, lease_owner="", lease_expires=None
    )
    if swept:
        log.warning("re-queued %d job(s) whose worker stopped renewing its lease", swept)
    return swept


def remove_orphans() -> list[tuple[int, str]]:
    """Delete Glint-made images stuck in ``queued``/``saving`` that no live job owns.

    Candidates come from the inventory (older than ``GLINT_JOB_ORPHAN_GRACE`` seconds); each is
    checked against the cloud again right before it is deleted.

    Returns:
        The ``(repo id, image id)`` pairs deleted.
    """
    cutoff = timezone.now() - datetime.timedelta(seconds=settings.GLINT_JOB_ORPHAN_GRACE)
    owned = set(
        JobTarget.objects.filter(job__in=Job.objects.live())
        .exclude(image_id="")
        .values_list("repo_id", "image_id")
    )
    candidates = (
        Image.objects.filter(status__in=STUCK_STATUSES, repo__enabled=True, created_at__lt=cutoff)
        .exclude(glint_source_id="")
        .select_related("repo")
    )
    removed = []
    for image in candidates:
        if (image.repo_id, image.image_id) in owned:
            continue
        try:
            outcome = remove_orphan_image(image.repo, image.image_id)
        except CloudError as exc:
            log.info(
                "orphan %s in repo %s not deleted now: %s", image.image_id, image.repo.name, exc
            )
            continue
        if outcome is DeleteOutcome.DELETED:
            log.warning(
                "deleted orphan image %s in repo %s (%s, no live job)",
                image.image_id,
                image.repo.name,
                image.status,
            )
        if outcome is not DeleteOutcome.KEPT:
            removed.append((image.repo_id, image.image_id))
    if removed:
        # A job at rest that recorded one no longer points at what is gone.
        for repo_id, image_id in removed:
            JobTarget.objects.filter(repo_id=repo_id, image_id=image_id).exclude(
                job__in=Job.objects.live()
            ).update(image_id="")
        request_refresh({repo_id for repo_id, _ in removed})
    return removed
