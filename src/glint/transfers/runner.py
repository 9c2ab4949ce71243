"""The ``upload`` kind of job: fan an upload's bytes out to its target repos.

Registered with the job runner (``glint.jobs.execution``) by this app's ``ready()``, so an upload
job is claimed, leased, cancelled, retried and finished like every other job. It runs in two
places:

- the first pass of a file upload runs in the web process, in the request that carries the
  bytes (``services.receive`` claims the job and hands the request body over through
  :data:`LIVE_STREAMS`);
- the first pass of a web-link upload, and every retry, run in a job worker: the bytes come
  from the link (first pass) or from the content cache (retry: never a second upload).

The first pass lands the bytes in the cache while it fans out (the engine's spool); when every
target failed before the fan-out began, the bytes are landed in the cache here, so the retry
still has them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time

from django.conf import settings

from glint.clouds import CloudError
from glint.inventory.matrix import ALGORITHM_STRENGTH
from glint.jobs import execution, states
from glint.jobs.models import Job, JobTarget
from glint.jobs.targets import (
    TargetWriter,
    content_cache,
    fail_targets,
    open_copy_targets,
    record_outcomes,
)
from glint.replication import (
    CopySource,
    ReplicationError,
    SourceVerificationFailed,
    TargetOutcome,
    copy_image,
)
from glint.transfers import fetch, formats
from glint.transfers.errors import ChecksumMismatch, UploadInterrupted
from glint.transfers.models import Upload, UploadState
from glint.transfers.sources import (
    IncomingStream,
    UploadSource,
    read_head,
    upload_record,
)

__all__ = ["LIVE_STREAMS", "fetch_policy", "register", "run_upload"]

log = logging.getLogger(__name__)

#: Job id → the bytes arriving for it in this process (the first pass of a file upload).
LIVE_STREAMS: dict[int, IncomingStream] = {}

#: Seconds between writes of an upload's bytes received.
PROGRESS_INTERVAL = 0.5


def fetch_policy(max_bytes: int | None = None) -> fetch.FetchPolicy:
    """The web-link rules of this deployment (settings ``fetch_allow_cidrs``, ``upload_max_bytes``)."""
    return fetch.FetchPolicy(allow_cidrs=tuple(settings.GLINT_FETCH_ALLOW_CIDRS),
                             max_bytes=max_bytes or settings.GLINT_UPLOAD_MAX_BYTES or None)


class _Recorder(TargetWriter):
    """The jobs app's progress hooks, plus the upload's own bytes received (the source read)."""

    def __init__(self, targets: dict[str, JobTarget], upload: Upload):
        super().__init__(targets)
        self.upload_pk = upload.pk
        self.last_read = 0.0

    def progress(self, target_key, code, done, total):
        if target_key is None:
            now = time.monotonic()
            if now - self.last_read >= PROGRESS_INTERVAL or done == total:
                self.last_read = now
                Upload.objects.filter(pk=self.upload_pk).update(bytes_received=done)
            return
        super().progress(target_key, code, done, total)


def _open_link(upload: Upload) -> IncomingStream:
    """Open the web link (and its checksum file) before any target image is created, so a refused
    redirect, an HTTP error, an over-size body or a format lie leaves nothing anywhere."""
    policy = fetch_policy()
    if upload.checksum_url and not upload.expected_digest:
        algo, digest = fetch.fetch_checksum(upload.checksum_url.reveal(), upload.checksum_entry, policy)
        Upload.objects.filter(pk=upload.pk).update(expected_algo=algo, expected_digest=digest)
        upload.expected_algo, upload.expected_digest = algo, digest
    response = fetch.open_url(upload.source_url.reveal(), policy)
    head, chunks = read_head(iter(response))
    try:
        disk_format = formats.resolve(upload.disk_format or None, head)
    except BaseException:
        response.close()
        raise
    Upload.objects.filter(pk=upload.pk).update(disk_format=disk_format, size=response.size)
    upload.disk_format, upload.size = disk_format, response.size
    return IncomingStream(chunks, disk_format, policy.max_bytes, on_close=response.close,
                          source_url=response.url)


def _land(stream: IncomingStream, upload: Upload) -> str | None:
    """Read the rest of an untouched stream into the cache (no target took it); its sha256."""
    cache = content_cache()
    spool = cache.spool(upload.size)
    algos = {"sha256", upload.expected_algo} - {""}
    hashes = {name: hashlib.new(name) for name in algos}
    try:
        for chunk in stream:
            for h in hashes.values():
                h.update(chunk)
            spool.write(chunk)
        digests = {name: h.hexdigest() for name, h in hashes.items()}
        if upload.expected_digest and digests[upload.expected_algo] != upload.expected_digest:
            raise ChecksumMismatch.of(upload.expected_algo, upload.expected_digest,
                                      digests[upload.expected_algo])
        spool.commit(digests)
        return digests["sha256"]
    except BaseException:
        spool.discard()
        raise
    finally:
        spool.close()


def _content_key(hashes) -> str:
    algo = next((a for a in ALGORITHM_STRENGTH if a in hashes), "sha256")
    return f"{algo}:{hashes[algo]}" if algo in hashes else ""


def run_upload(job: Job, todo: list[JobTarget], cancel: threading.Event) -> None:
    """Write an upload to the targets in ``todo`` (the job runner calls this with the lease held)."""
    upload = Upload.objects.get(job=job)
    stream = LIVE_STREAMS.get(job.pk)
    if stream is None and not upload.sha256 and upload.from_url:
        Upload.objects.filter(pk=upload.pk).update(state=UploadState.RECEIVING, error_code="", error="")
        try:
            stream = _open_link(upload)
        except CloudError as exc:
            Upload.objects.filter(pk=upload.pk).update(state=UploadState.FAILED, error_code=exc.code,
                                                       error=exc.message)
            fail_targets(todo, exc)
            return
    options = job.options or {}
    record = upload_record(upload, upload.disk_format or "raw")
    by_key = {str(t.pk): t for t in todo}
    # An upload is the person's own bytes: copied even without a declared checksum.
    uploaded = UploadSource(record, stream, missing_reason=_why_not_in_cache())
    source = CopySource(uploaded, record.id, repo_ref="upload",
                        pull_url=_pull_url(upload, todo, stream), trusted_stream=True)
    with contextlib.ExitStack() as stack:
        targets = open_copy_targets(todo, stack, visibility=upload.visibility, options=options)
        result = copy_image(source, targets, cache=content_cache(), observer=_Recorder(by_key, upload),
                            cancel=cancel)
    _blame_declared_checksum(upload, result)
    record_outcomes(by_key, result)
    if stream is not None:  # the first pass: the bytes were arriving
        _settle_incoming(job, upload, stream, result, cancel)


def _blame_declared_checksum(upload: Upload, result) -> None:
    """The engine says the *source* stored a hash its bytes do not match; for an upload that hash
    is the person's declared checksum: say that, with both values, in each failed target."""
    for target in result.targets.values():
        error = target.error
        if (isinstance(error, SourceVerificationFailed) and error.algo == upload.expected_algo
                and error.stored == upload.expected_digest):
            target.error = ChecksumMismatch.of(error.algo, error.stored, error.computed)


def _pull_url(upload: Upload, todo: list[JobTarget], stream: IncomingStream | None) -> str | None:
    """The web link the target clouds may fetch themselves (``web-download``), or None.

    Only on a link's first pass (a retry streams through Glint: that is the fallback when a
    cloud's own fetch failed), only with an expected checksum (the pulled copies are verified
    against it), only for a link without credentials (the cloud would keep them in its import
    task, readable by its project), only for a link that announced its size when there is a
    size limit (a cloud's fetch cannot be stopped at the limit; the copy's size is then checked
    against the announced one), and only when the setting ``cloud_pull`` is on. The cloud
    resolves the link's host itself, so only a host that cannot become an address Glint refuses
    is handed over (:func:`fetch.cloud_may_fetch`: an IP literal, or a name an admin listed in
    ``cloud_pull_hosts``), and only a link that did not redirect Glint (the cloud would follow
    the redirect on its own).
    """
    if not (settings.GLINT_CLOUD_PULL and upload.from_url and upload.expected_digest) or upload.sha256:
        return None
    if settings.GLINT_UPLOAD_MAX_BYTES and upload.size is None:
        return None
    if any(target.attempts > 1 for target in todo):
        return None
    url = upload.source_url.reveal()
    if fetch.redact(url) != url or stream is None or stream.source_url != url:
        return None
    if not fetch.cloud_may_fetch(url, fetch_policy(), settings.GLINT_CLOUD_PULL_HOSTS):
        log.info("upload %s: the clouds are not handed %s (its host is neither an allowed address "
                 "nor listed in cloud_pull_hosts): Glint streams it", upload.pk, url)
        return None
    return url


def _settle_incoming(job: Job, upload: Upload, stream: IncomingStream, result, cancel) -> None:
    """Record how the incoming leg ended; land untouched bytes in the cache for the retry."""
    sha256, hashes = result.sha256, dict(result.hashes)
    if not stream.started and any(t.outcome is TargetOutcome.PULLED for t in result.targets.values()):
        _settle_pulled(job, upload, stream)
        return
    if not stream.started and not cancel.is_set():
        try:
            sha256 = _land(stream, upload)
            hashes = {"sha256": sha256}
        except (CloudError, ReplicationError) as exc:
            stream.error = exc
    if stream.error is None and not sha256 and not cancel.is_set():
        # The bytes arrived but the engine rejected them (e.g. the declared checksum): say why.
        stream.error = next((t.error for t in result.targets.values() if t.error), None) or \
            UploadInterrupted("the upload did not complete")
    if stream.error is not None:
        error = stream.error
        Upload.objects.filter(pk=upload.pk).update(
            state=UploadState.FAILED, bytes_received=stream.received,
            error_code=getattr(error, "code", "error"), error=getattr(error, "message", str(error)))
        return
    if cancel.is_set() and not sha256:
        Upload.objects.filter(pk=upload.pk).update(state=UploadState.CANCELLED)
        return
    size = stream.received
    Upload.objects.filter(pk=upload.pk).update(state=UploadState.RECEIVED, sha256=sha256 or "", size=size,
                                               bytes_received=size or 0)
    Job.objects.filter(pk=job.pk).update(sha256=sha256 or "", content_key=_content_key(hashes))


def _settle_pulled(job: Job, upload: Upload, stream: IncomingStream) -> None:
    """The clouds fetched the link themselves and Glint read none of it (beyond the head that
    told the format): close the link; a target that failed fetches it again on its retry."""
    stream.close()
    Upload.objects.filter(pk=upload.pk).update(state=UploadState.PULLED)
    Job.objects.filter(pk=job.pk).update(
        content_key=_content_key({upload.expected_algo: upload.expected_digest}))


def register() -> None:
    """Make the job runner run ``upload`` jobs with :func:`run_upload`."""
    execution.register_runner(states.UPLOAD, run_upload)


def _why_not_in_cache() -> str:
    """What may have taken a retry's bytes from the cache. A ``glint worker`` sees only its own
    ``GLINT_CACHE_DIR``: say so there, since an evicted entry is then not the likely cause."""
    if settings.GLINT_JOB_RUNNER == "celery":
        return ("expired or evicted, or not on storage this worker shares with glint serve "
                "(GLINT_CACHE_DIR must be shared when GLINT_JOB_RUNNER=celery)")
    return "expired or evicted"
