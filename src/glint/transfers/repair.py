"""What a crash leaves of uploads, cleared at start-up and then every :data:`INTERVAL` seconds.

- Spools of the content cache no process writes (``ContentCache.remove_abandoned_spools``).
- Upload parts no resumable upload owns: the upload ended, or is gone.
- Interrupted uploads not resumed within ``GLINT_UPLOAD_RESUME_HOURS``: they fail, their part
  is removed.
- A file upload that stopped between taking its first bytes and creating its job (it has no
  job to resume): it fails.

A file upload whose server died mid-stream needs nothing here: its job's lease expires, the job is
run again without the bytes and makes the upload ``interrupted`` (``glint.transfers.upload_job``).
"""

from __future__ import annotations

import datetime
import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from glint.jobs.models import Job
from glint.jobs.runners import content_cache
from glint.transfers.models import Upload, UploadState

__all__ = ["INTERVAL", "repair", "start_repair"]

log = logging.getLogger(__name__)

INTERVAL = 300.0

#: States in which an upload's part is still needed.
_OWNING = (UploadState.RECEIVING, UploadState.INTERRUPTED)


def repair() -> dict[str, int]:
    """One round; returns how many of each kind of leftover it removed."""
    cache = content_cache()
    spools = cache.remove_abandoned_spools()
    expired = _expire_interrupted()
    jobless = Upload.objects.filter(
        state=UploadState.RECEIVING,
        job__isnull=True,
        url_shown="",
        created__lt=timezone.now() - datetime.timedelta(seconds=settings.GLINT_JOB_LEASE_SECONDS),
    ).update(
        state=UploadState.FAILED,
        error_code="upload_interrupted",
        error="Glint stopped before it kept any of the bytes; upload the image again.",
    )
    owning = {
        str(pk) for pk in Upload.objects.filter(state__in=_OWNING).values_list("pk", flat=True)
    }
    parts = [key for key in cache.upload_part_keys() if key not in owning]
    for key in parts:
        cache.remove_upload_part(key)
    counts = {
        "spools": len(spools),
        "expired_uploads": expired,
        "jobless_uploads": jobless,
        "parts": len(parts),
    }
    if any(counts.values()):
        log.warning(
            "removed upload leftovers: %s",
            ", ".join(f"{n} {what}" for what, n in counts.items() if n),
        )
    return counts


def _expire_interrupted() -> int:
    hours = settings.GLINT_UPLOAD_RESUME_HOURS
    message = (
        f"Not resumed within {hours:g} h: the bytes that arrived were removed; "
        "upload the image again."
    )
    cutoff = timezone.now() - datetime.timedelta(hours=hours)
    stale = Upload.objects.filter(state=UploadState.INTERRUPTED, interrupted_at__lt=cutoff)
    jobs = list(stale.exclude(job=None).values_list("job", flat=True))
    count = stale.update(state=UploadState.FAILED, error_code="upload_expired", error=message)
    Job.objects.filter(pk__in=jobs).update(error_code="upload_expired", error=message)
    return count


def _loop() -> None:
    delay = 0.0
    stopping = threading.Event()
    while not stopping.wait(delay):
        delay = INTERVAL
        close_old_connections()
        try:
            repair()
        except Exception:  # a database hiccup: the next round tries again
            log.exception("upload repair round failed")
        finally:
            connection.close()


def start_repair() -> None:
    """Run :func:`repair` now and every :data:`INTERVAL` seconds, in a daemon thread."""
    threading.Thread(target=_loop, name="glint-upload-repair", daemon=True).start()
