"""The ``upload`` kind of job: fan an upload's bytes out to its target repos.

Named in the jobs app's table of kinds (``glint.jobs.kinds.KINDS``), so an upload job is claimed,
leased, cancelled, retried and finished like every other job. It runs in two places:

- the first pass of a file upload, and its resumes, run in the web process, in the request that
  carries the bytes: ``services.receive`` claims the job and hands the request body to
  ``execution.run_claimed`` as the ``stream`` argument of :func:`run_upload`;
- the first pass of a web-link upload, and every retry, run in a job worker: the bytes come
  from the link (first pass) or from the content cache (retry: never a second upload).

Every incoming stream is written to the upload's part file as it passes
(``glint.transfers.parts``), and the verified part becomes the cache entry a retry reads (the
engine spools only for a target that falls behind, or whole for one that converts: then its
spool is the entry). When every target failed before the fan-out began, the stream is read to
its end here, so the retry still has the bytes. A file upload whose stream broke (the
connection, or the server: a job re-run without its stream) becomes ``interrupted``: its part
keeps the bytes that arrived and a later request resumes it.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.utils import timezone

from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import (
    TargetWriter,
    content_cache,
    copy_to_targets,
    discard_partial_images,
    fail_targets,
    record_outcomes,
)
from glint.matrix.rows import ALGORITHM_STRENGTH
from glint.replication import (
    CloudError,
    CopySource,
    MultiHasher,
    ReplicationError,
    SourceVerificationFailed,
    TargetOutcome,
    TargetState,
)
from glint.transfers import fetch, formats
from glint.transfers.errors import ChecksumMismatch, SizeMismatch, UploadInterrupted
from glint.transfers.models import Upload, UploadState
from glint.transfers.parts import UploadPart
from glint.transfers.sources import (
    IncomingStream,
    UploadSource,
    read_head,
    upload_record,
)

__all__ = ["fetch_policy", "interrupted_message", "run_upload"]

log = logging.getLogger(__name__)

#: Seconds between writes of an upload's bytes received.
PROGRESS_INTERVAL = 0.5


def fetch_policy(max_bytes: int | None = None) -> fetch.FetchPolicy:
    """The web-link rules of this deployment (settings ``fetch_allow_cidrs``,
    ``upload_max_bytes``)."""
    return fetch.FetchPolicy(
        allow_cidrs=tuple(settings.GLINT_FETCH_ALLOW_CIDRS),
        max_bytes=max_bytes or settings.GLINT_UPLOAD_MAX_BYTES or None,
    )


class _Recorder(TargetWriter):
    """The jobs app's progress hooks, plus the upload's bytes received: those safe in its part."""

    def __init__(self, targets: dict[str, JobTarget], upload: Upload, part: UploadPart | None):
        super().__init__(targets)
        self.upload_pk = upload.pk
        self.part = part
        self.last_read = 0.0

    def progress(self, target_key, code, done, total):
        if target_key is None:
            now = time.monotonic()
            due = now - self.last_read >= PROGRESS_INTERVAL or done == total
            if self.part is not None and due:
                self.last_read = now
                Upload.objects.filter(pk=self.upload_pk).update(bytes_received=self.part.safe)
            return
        super().progress(target_key, code, done, total)


def _open_link(upload: Upload) -> IncomingStream:
    """Open the web link (and its checksum file) before any target image is created, so a refused
    redirect, an HTTP error, an over-size body or a format lie leaves nothing anywhere."""
    # A size given with the link (a signed image list's hv:size) is a promise: more bytes are
    # refused as they come, another Content-Length before any target is touched.
    policy = fetch_policy(upload.size)
    if upload.checksum_url and not upload.expected_digest:
        algo, digest = fetch.fetch_checksum(
            upload.checksum_url.reveal(), upload.checksum_entry, policy
        )
        Upload.objects.filter(pk=upload.pk).update(expected_algo=algo, expected_digest=digest)
        upload.expected_algo, upload.expected_digest = algo, digest
    response = fetch.open_url(upload.source_url.reveal(), policy)
    if upload.size is not None and response.size not in (None, upload.size):
        response.close()
        raise SizeMismatch(
            f"{response.url} sends {response.size} bytes, but {upload.size} were expected"
        )
    head, chunks = read_head(iter(response))
    try:
        disk_format = formats.resolve(upload.disk_format or None, head)
    except BaseException:
        response.close()
        raise
    Upload.objects.filter(pk=upload.pk).update(disk_format=disk_format, size=response.size)
    upload.disk_format, upload.size = disk_format, response.size
    part = UploadPart(content_cache().upload_part(upload.part_key, 0))
    return IncomingStream(
        part.chunks(chunks),
        disk_format,
        policy.max_bytes,
        part=part,
        on_close=response.close,
        source_url=response.url,
        on_interrupt=response.interrupt,
    )


def _land(stream: IncomingStream, upload: Upload) -> dict[str, str]:
    """Read the rest of an untouched stream (no target took it) into its part; its digests."""
    algos = {"sha256", upload.expected_algo} - {""}
    with MultiHasher(algos) as hasher:
        for chunk in stream:
            hasher.update(chunk)
        digests = hasher.hexdigests()
    computed = digests.get(upload.expected_algo)
    if upload.expected_digest and computed != upload.expected_digest:
        raise ChecksumMismatch.of(upload.expected_algo, upload.expected_digest, computed)
    return digests


def _keep_in_cache(stream: IncomingStream, upload: Upload, hashes: dict[str, str]) -> None:
    """The verified bytes stay in the cache for retries: the part becomes the entry, unless the
    engine's spool holds them already (a target converted from it); then the part goes."""
    cache = content_cache()
    part = stream.part
    if part is None:
        return
    if cache.get(hashes["sha256"]) is None and part.spool.written == stream.received:
        part.spool.commit(hashes)
    else:
        cache.remove_upload_part(upload.part_key)


def _content_key(hashes) -> str:
    algo = next((a for a in ALGORITHM_STRENGTH if a in hashes), "sha256")
    return f"{algo}:{hashes[algo]}" if algo in hashes else ""


def run_upload(
    job: Job, todo: list[JobTarget], cancel: threading.Event, stream: IncomingStream | None = None
) -> None:
    """Write an upload to the targets in ``todo`` (the job runner calls this with the lease held).

    Args:
        stream: The bytes arriving in the request that claimed the job (a file upload's first
            pass or a resume); None in a job worker.
    """
    upload = Upload.objects.get(job=job)
    if stream is None and not upload.sha256 and not upload.from_url:
        # A file upload's job re-run without its bytes: the process receiving them died.
        _interrupt(upload, todo, "Glint stopped while receiving it")
        return
    if stream is None and not upload.sha256 and upload.from_url:
        Upload.objects.filter(pk=upload.pk).update(
            state=UploadState.RECEIVING, error_code="", error=""
        )
        try:
            stream = _open_link(upload)
        except CloudError as exc:
            Upload.objects.filter(pk=upload.pk).update(
                state=UploadState.FAILED, error_code=exc.code, error=exc.message
            )
            fail_targets(todo, exc)
            return
    try:
        _fan_out(job, upload, todo, cancel, stream)
    finally:
        if stream is not None and stream.part is not None and upload.from_url:
            stream.part.close()  # a file upload's part is closed by the request that opened it


def _fan_out(
    job: Job,
    upload: Upload,
    todo: list[JobTarget],
    cancel: threading.Event,
    stream: IncomingStream | None,
) -> None:
    options = job.options or {}
    record = upload_record(upload, upload.disk_format or "raw")
    by_key = {str(t.pk): t for t in todo}
    # An upload is the person's own bytes: copied even without a declared checksum.
    uploaded = UploadSource(record, stream, missing_reason=_why_not_in_cache())
    source = CopySource(
        uploaded,
        record.id,
        repo_ref="upload",
        pull_url=_pull_url(upload, todo, stream, options),
        trusted_stream=True,
        read_once=True,  # the retries read the cache, never the person's stream again
        kept_by_caller=stream is not None and stream.part is not None,  # its part (see below)
    )
    observer = _Recorder(by_key, upload, stream.part if stream is not None else None)
    result = copy_to_targets(
        todo,
        lambda _stack: source,
        visibility=upload.visibility,
        options=options,
        observer=observer,
        cancel=cancel,
        read_without_targets=True,  # the bytes still land in the cache for the retry
    )
    _blame_declared_checksum(upload, result)
    record_outcomes(by_key, result)
    if stream is not None:  # the first pass or a resume: the bytes were arriving
        _settle_incoming(job, upload, todo, stream, result, cancel)


def _blame_declared_checksum(upload: Upload, result) -> None:
    """The engine says the *source* stored a hash its bytes do not match; for an upload that hash
    is the person's declared checksum: say that, with both values, in each failed target."""
    for target in result.targets.values():
        error = target.error
        if (
            isinstance(error, SourceVerificationFailed)
            and error.algo == upload.expected_algo
            and error.stored == upload.expected_digest
        ):
            target.error = ChecksumMismatch.of(error.algo, error.stored, error.computed)


def _pull_url(
    upload: Upload, todo: list[JobTarget], stream: IncomingStream | None, options: dict
) -> str | None:
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
    the redirect on its own). Never for a job created with ``cloud_pull`` off (a subscription's:
    its image is fetched once and its size and SHA-512 checked by Glint while it streams).
    """
    if (
        not (settings.GLINT_CLOUD_PULL and upload.from_url and upload.expected_digest)
        or options.get("cloud_pull") is False
        or upload.sha256
    ):
        return None
    if settings.GLINT_UPLOAD_MAX_BYTES and upload.size is None:
        return None
    if any(target.attempts > 1 for target in todo):
        return None
    url = upload.source_url.reveal()
    if fetch.redact(url) != url or stream is None or stream.source_url != url:
        return None
    if not fetch.cloud_may_fetch(url, fetch_policy(), settings.GLINT_CLOUD_PULL_HOSTS):
        log.info(
            "upload %s: the clouds are not handed %s (its host is neither an allowed address "
            "nor listed in cloud_pull_hosts): Glint streams it",
            upload.pk,
            url,
        )
        return None
    return url


def _settle_incoming(
    job: Job, upload: Upload, todo: list[JobTarget], stream: IncomingStream, result, cancel
) -> None:
    """Record how the incoming leg ended; land untouched bytes in the cache for the retry."""
    sha256, hashes = result.sha256, dict(result.hashes)
    if not stream.started and any(
        t.outcome is TargetOutcome.PULLED for t in result.targets.values()
    ):
        _settle_pulled(job, upload, stream)
        return
    if not stream.started and not cancel.is_set():
        try:
            hashes = _land(stream, upload)
            sha256 = hashes["sha256"]
        except (CloudError, ReplicationError) as exc:
            stream.error = exc
    if stream.error is None and not sha256 and not cancel.is_set():
        # The bytes arrived but the engine rejected them (e.g. the declared checksum): say why.
        stream.error = next(
            (t.error for t in result.targets.values() if t.error), None
        ) or UploadInterrupted("the upload did not complete")
    if isinstance(stream.error, UploadInterrupted) and not upload.from_url and not cancel.is_set():
        _interrupt(upload, todo, "the connection broke", safe=stream.part.safe)
        return
    if stream.error is not None or (cancel.is_set() and not sha256):
        content_cache().remove_upload_part(upload.part_key)
    if cancel.is_set() and (stream.error is not None or not sha256):
        # Cancelled before the bytes were all in: whatever broke the stream (a cancel ends a
        # stalled read itself) is the cancel's doing.
        Upload.objects.filter(pk=upload.pk).update(state=UploadState.CANCELLED)
        return
    if stream.error is not None:
        error = stream.error
        Upload.objects.filter(pk=upload.pk).update(
            state=UploadState.FAILED,
            bytes_received=stream.received,
            error_code=getattr(error, "code", "error"),
            error=getattr(error, "message", str(error)),
        )
        return
    _keep_in_cache(stream, upload, hashes)
    size = stream.received
    Upload.objects.filter(pk=upload.pk).update(
        state=UploadState.RECEIVED,
        sha256=sha256 or "",
        size=size,
        bytes_received=size or 0,
        error_code="",
        error="",
        interrupted_at=None,
    )
    Job.objects.filter(pk=job.pk).update(sha256=sha256 or "", content_key=_content_key(hashes))


def interrupted_message(upload: Upload, offset: int, why: str) -> str:
    """What an interrupted upload says (on itself, and on each target of its job): what
    happened, how much arrived, and what to do."""
    total = f"{offset} of {upload.size}" if upload.size is not None else f"{offset}"
    return (
        f"the upload was interrupted ({why}) after {total} bytes; resume it within "
        f"{settings.GLINT_UPLOAD_RESUME_HOURS:g} h by sending the rest from byte {offset} "
        f"(glint upload resumes by itself, or later: glint upload FILE --resume {upload.pk}; "
        f"the API: PATCH the upload URL with Upload-Offset: {offset}), or cancel it"
    )


def _interrupt(upload: Upload, todo: list[JobTarget], why: str, safe: int | None = None) -> None:
    """Make a file upload ``interrupted``: its targets' half-written images are deleted (a
    resume restarts them) and they fail with the reason and what to do."""
    offset = upload.bytes_received if safe is None else safe
    if upload.state == UploadState.INTERRUPTED:  # a Retry of its job: it still waits for the rest
        error = UploadInterrupted(upload.error)
    else:
        error = UploadInterrupted(interrupted_message(upload, offset, why))
    Upload.objects.filter(pk=upload.pk, state=UploadState.RECEIVING).update(
        state=UploadState.INTERRUPTED,
        bytes_received=offset,
        error_code=error.code,
        error=error.message,
        interrupted_at=timezone.now(),
    )
    discard_partial_images(todo, f"upload {upload.pk}")
    fail_targets([t for t in todo if t.state != TargetState.DONE.value], error)


def _settle_pulled(job: Job, upload: Upload, stream: IncomingStream) -> None:
    """The clouds fetched the link themselves and Glint read none of it (beyond the head that
    told the format): close the link; a target that failed fetches it again on its retry."""
    stream.close()
    content_cache().remove_upload_part(upload.part_key)
    Upload.objects.filter(pk=upload.pk).update(state=UploadState.PULLED)
    Job.objects.filter(pk=job.pk).update(
        content_key=_content_key({upload.expected_algo: upload.expected_digest})
    )


def _why_not_in_cache() -> str:
    """What may have taken a retry's bytes from the cache. A ``glint worker`` sees only its own
    ``GLINT_CACHE_DIR``: say so there, since an evicted entry is then not the likely cause."""
    if settings.GLINT_JOB_RUNNER == "celery":
        return (
            "expired or evicted, or not on storage this worker shares with glint serve "
            "(GLINT_CACHE_DIR must be shared when GLINT_JOB_RUNNER=celery)"
        )
    return "expired or evicted"
