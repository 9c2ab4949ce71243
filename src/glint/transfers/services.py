"""Uploads and downloads: what the API, the pages and the command line call.

Upload from a file (two requests, so ``curl -T`` and the CLI send huge files as a raw stream):

1. :func:`create_upload` checks the metadata and the targets and stores an :class:`Upload`
   (state ``waiting``); the caller gets the URL to ``PUT`` the bytes to.
2. :func:`receive` runs in the request that carries the bytes: it refuses a format lie from the
   first bytes, then creates the ``upload`` job already claimed by this request and runs its first
   pass right here (``glint.transfers.upload_job``): the targets are written while the bytes arrive
   and the bytes land in the content cache at the same time.
3. If the connection breaks (or the server dies), the upload is ``interrupted``; :func:`receive`
   with ``offset`` (the ``Upload-Offset`` of a ``PATCH``; :func:`resume_offset` tells it) takes
   the rest, claims the same job again and runs it over the whole stream: the bytes kept in the
   upload's part file, then the new ones (``glint.transfers.parts``).

Upload from a web link: :func:`create_upload` with ``url`` refuses a bad link at once (nothing is
connected to) and queues the job; a job worker fetches the link.

Download: :func:`download_source` picks the copy of a matrix row to stream.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import socket
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from glint import audit, validators
from glint.accounts.models import Group, User
from glint.jobs import execution, states
from glint.jobs import services as job_services
from glint.jobs.dispatch import notify
from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import content_cache
from glint.matrix.rows import CellState, Row
from glint.replication import (
    CacheEntry,
    ConflictPolicy,
    ConversionFailed,
    needs_conversion,
    qemu_input_format,
)
from glint.repos.models import Repo
from glint.transfers import fetch, formats, parts
from glint.transfers.errors import TransferError
from glint.transfers.models import Upload, UploadState
from glint.transfers.parts import UploadPart
from glint.transfers.sources import IncomingStream, read_head
from glint.transfers.upload_job import fetch_policy

__all__ = [
    "DownloadSource",
    "OffsetMismatch",
    "UploadRefused",
    "cancel_upload",
    "create_upload",
    "download_source",
    "receive",
    "resume_offset",
]

VISIBILITIES = ("private", "shared", "community", "public")
HEX_LENGTHS = {"sha256": 64, "sha512": 128}


class UploadRefused(Exception):
    """The upload cannot go ahead; ``message`` is safe to show, ``status`` the HTTP answer."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


class OffsetMismatch(UploadRefused):
    """A resume that does not continue at the server's offset (409); ``offset`` is that offset."""

    def __init__(self, message: str, offset: int):
        super().__init__(message, status=409, code="offset_mismatch")
        self.offset = offset


# Creating


def _check_targets(group: Group, repos: list[Repo]) -> list[Repo]:
    if not repos:
        raise UploadRefused("Name at least one repo to upload to.")
    for repo in repos:
        if repo.group_id != group.pk:
            raise UploadRefused(f"Repo {repo.pk} is not one of group {group.name}'s repos.")
        if not repo.enabled:
            raise UploadRefused(f"Repo {repo.name} is disabled.")
    if len({r.pk for r in repos}) != len(repos):
        raise UploadRefused("A repo is named twice.")
    return repos


def _check_checksum(algo: str, digest: str) -> tuple[str, str]:
    if not digest:
        return "", ""
    algo = algo or {64: "sha256", 128: "sha512"}.get(len(digest), "")
    if (
        algo not in HEX_LENGTHS
        or len(digest) != HEX_LENGTHS[algo]
        or not all(c in "0123456789abcdefABCDEF" for c in digest)
    ):
        raise UploadRefused(
            "The checksum must be a sha256 (64 hex digits) or sha512 (128 hex digits)."
        )
    return algo, digest.lower()


def create_upload(
    group: Group,
    *,
    requester: User | None,
    targets: list[Repo],
    name: str = "",
    disk_format: str = "",
    container_format: str = "bare",
    min_disk: int = 0,
    min_ram: int = 0,
    visibility: str = "private",
    properties: dict | None = None,
    conflict_policy: str = ConflictPolicy.REPORT.value,
    size: int | None = None,
    checksum_algo: str = "",
    checksum: str = "",
    url: str = "",
    checksum_url: str = "",
    checksum_entry: str = "",
    cloud_pull: bool = True,
    replace_only: dict[int, list[str]] | None = None,
) -> Upload:
    """Store a new upload; a web-link upload's job is queued at once.

    Args:
        cloud_pull: False: Glint streams the link itself even where the setting ``cloud_pull``
            would let the clouds fetch it, so it is fetched once and checked while it streams.
        replace_only: ``{repo pk: image ids}``: the only old images of the name that the conflict
            policy may replace or rename in each repo (None: any of the target's project).

    Raises:
        UploadRefused: Bad metadata, a repo not of the group, a size over the limit (413), or a
            web link that may not be fetched (the reason, never the link's credentials).
    """
    _check_targets(group, targets)
    if disk_format and disk_format not in formats.DISK_FORMATS:
        raise UploadRefused(
            f"Unknown disk format {disk_format!r}; use one of {', '.join(formats.DISK_FORMATS)}."
        )
    if container_format not in formats.CONTAINER_FORMATS:
        raise UploadRefused(f"Unknown container format {container_format!r}.")
    if visibility not in VISIBILITIES:
        raise UploadRefused(f"Unknown visibility {visibility!r}.")
    try:
        policy = ConflictPolicy(conflict_policy)
    except ValueError:
        raise UploadRefused(f"Unknown conflict policy {conflict_policy!r}.") from None
    limit = settings.GLINT_UPLOAD_MAX_BYTES
    if size is not None and limit and size > limit:
        raise UploadRefused(
            f"The image is {size} bytes; this Glint accepts at most {limit} (upload_max_bytes).",
            status=413,
            code="too_large",
        )
    algo, digest = _check_checksum(checksum_algo, checksum)
    url_shown = ""
    if url:
        url_shown = fetch.redact(url)
        for link in filter(None, (url, checksum_url)):
            try:
                fetch.resolve(link, fetch_policy())
            except TransferError as exc:
                raise UploadRefused(exc.message, code=exc.code) from None
        if checksum_url and not checksum_entry:
            checksum_entry = fetch.name_from_url(url)
        name = name or fetch.name_from_url(url)
    if not name.strip():
        raise UploadRefused("Give the image a name.")
    problem = validators.text_problem(name) or validators.check_properties(properties or {})
    if problem:
        raise UploadRefused(problem + ".", code="unsafe_text")
    with transaction.atomic():
        upload = Upload.objects.create(
            group=group,
            requester=requester,
            requester_dn=requester.dn if requester else "",
            name=name.strip(),
            disk_format=disk_format,
            container_format=container_format,
            min_disk=min_disk,
            min_ram=min_ram,
            visibility=visibility,
            properties=properties or {},
            conflict_policy=policy.value,
            size=size,
            expected_algo=algo,
            expected_digest=digest,
            source_url=url,
            url_shown=url_shown,
            checksum_url=checksum_url,
            checksum_entry=checksum_entry if checksum_url else "",
        )
        upload.targets.set(targets)
        audit.record(
            "upload.create",
            user=requester,
            group=group,
            image=upload.name,
            details={
                "upload": upload.pk,
                "targets": [r.name for r in targets],
                "url": url_shown,
                "size": size,
            },
        )
        if url:
            _create_job(upload, claimed_by=None, cloud_pull=cloud_pull, replace_only=replace_only)
    return upload


def _claim(owner: str) -> dict:
    """The values of a job row claimed by ``owner``, the request that receives its bytes."""
    now = timezone.now()
    lease = datetime.timedelta(seconds=settings.GLINT_JOB_LEASE_SECONDS)
    return {
        "state": states.RUNNING,
        "lease_owner": owner,
        "started": now,
        "finished": None,
        "next_attempt_at": None,
        "lease_expires": now + lease,
    }


def _create_job(
    upload: Upload,
    claimed_by: str | None,
    cloud_pull: bool = True,
    replace_only: dict[int, list[str]] | None = None,
) -> Job:
    """The upload's fan-out job: queued for a worker, or already claimed by ``claimed_by``."""
    claim = {**_claim(claimed_by), "attempts": 1} if claimed_by else {}
    options = {"visibility": upload.visibility, "conflict_policy": upload.conflict_policy}
    if not cloud_pull:
        options["cloud_pull"] = False
    if replace_only is not None:
        options["replace_only"] = {str(repo): ids for repo, ids in replace_only.items()}
    job = Job.objects.create(
        kind=states.UPLOAD,
        group=upload.group,
        requester=upload.requester,
        requester_dn=upload.requester_dn,
        image_name=upload.name,
        row_key=job_services.row_key(
            upload.group, states.UPLOAD, upload.name, f"upload:{upload.pk}"
        ),
        options=options,
        **claim,
    )
    JobTarget.objects.bulk_create(
        [
            JobTarget(job=job, repo=repo, repo_name=repo.name, bytes_total=upload.size)
            for repo in upload.targets.order_by("name")
        ]
    )
    Upload.objects.filter(pk=upload.pk).update(job=job)
    upload.job = job
    if not claimed_by:
        transaction.on_commit(lambda: notify(job.pk))
    return job


# Receiving a file


def resume_offset(upload: Upload) -> int:
    """The byte the rest of ``upload`` must start at (``Upload-Offset``): the bytes safe in its
    part file; all of them once it was received."""
    if upload.state in (UploadState.RECEIVED, UploadState.PULLED):
        return upload.size or upload.bytes_received
    if upload.state in (UploadState.RECEIVING, UploadState.INTERRUPTED):
        return parts.resume_offset(content_cache(), upload)
    return 0


def receive(
    upload: Upload, chunks: Iterator[bytes], length: int | None, offset: int | None = None
) -> Upload:
    """Run a pass of a file upload in this request, while its bytes arrive: the first one, or,
    with ``offset``, a resume of an interrupted upload.

    Args:
        upload: A ``waiting`` upload, or (``offset``) an ``interrupted`` one.
        chunks: The request body: the whole image, or its bytes from ``offset`` on.
        length: ``Content-Length`` (None when the body is chunked).
        offset: Where the body starts in the image (``Upload-Offset``); None: a whole upload.

    Returns:
        The upload, reloaded: ``received`` (see its job for each target), ``interrupted``,
        ``failed`` or ``cancelled``.

    Raises:
        UploadRefused: Not waiting or interrupted (409), over the size limit (413, before
            reading), or a declared format the first bytes contradict (400, before anything
            is sent to a cloud).
        OffsetMismatch: ``offset`` is not where the upload stands (409).
    """
    start = offset or 0
    limit = settings.GLINT_UPLOAD_MAX_BYTES or None
    if limit and length is not None and start + length > limit:
        raise UploadRefused(
            f"The upload is {start + length} bytes; this Glint accepts at most "
            f"{limit} (upload_max_bytes).",
            status=413,
            code="too_large",
        )
    if upload.size is not None and length is not None and start + length != upload.size:
        raise UploadRefused(
            f"The upload was announced as {upload.size} bytes but {start + length} are being sent."
        )
    owner = f"upload:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if start == 0 and upload.state == UploadState.WAITING:
        job, chunks = _first_pass(upload, chunks, length, owner)
    else:
        job = _resume(upload, start, owner)
    cache = content_cache()
    part = UploadPart(cache.upload_part(upload.part_key, start))
    try:
        execution.run_claimed(
            job.pk,
            owner,
            stream=IncomingStream(part.chunks(chunks), upload.disk_format, limit, part=part),
        )
    finally:
        part.close()
    upload.refresh_from_db()
    outcome = audit.OK if upload.state == UploadState.RECEIVED else audit.FAILED
    audit.record(
        "upload.receive",
        outcome=outcome,
        user=upload.requester,
        group=upload.group,
        image=upload.name,
        details={
            "upload": upload.pk,
            "job": job.pk,
            "offset": start,
            "bytes": upload.bytes_received,
            "sha256": upload.sha256,
            "reason": upload.error,
        },
    )
    return upload


def _first_pass(
    upload: Upload, chunks: Iterator[bytes], length: int | None, owner: str
) -> tuple[Job, Iterator[bytes]]:
    """Take a waiting upload for this request: check the first bytes, create its job claimed.
    Returns the job and the body from its start again."""
    if not Upload.objects.filter(pk=upload.pk, state=UploadState.WAITING).update(
        state=UploadState.RECEIVING, size=length if length is not None else upload.size
    ):
        upload.refresh_from_db()
        raise UploadRefused(
            f"Upload {upload.pk} is {upload.state}: its data was sent already.",
            status=409,
            code="state",
        )
    upload.refresh_from_db()
    try:
        head, chunks = read_head(chunks)
        disk_format = formats.resolve(upload.disk_format or None, head)
    except TransferError as exc:  # a format lie, or the client gave up within the first bytes
        Upload.objects.filter(pk=upload.pk).update(
            state=UploadState.FAILED, error_code=exc.code, error=exc.message
        )
        audit.record(
            "upload.receive",
            outcome=audit.REFUSED,
            user=upload.requester,
            group=upload.group,
            image=upload.name,
            details={"upload": upload.pk, "reason": exc.message},
        )
        raise UploadRefused(exc.message, code=exc.code) from None
    Upload.objects.filter(pk=upload.pk).update(disk_format=disk_format)
    upload.disk_format = disk_format
    with transaction.atomic():
        return _create_job(upload, claimed_by=owner), chunks


def _resume(upload: Upload, offset: int, owner: str) -> Job:
    """Take an interrupted upload for this request at ``offset``, and claim its job again: the
    targets not done are redone over the whole stream."""
    expected = resume_offset(upload)
    if upload.state == UploadState.RECEIVING:
        raise UploadRefused(
            f"Upload {upload.pk} is still being received (by a request or a server "
            f"that stopped: that is noticed within "
            f"{settings.GLINT_JOB_LEASE_SECONDS} s); try again then.",
            status=409,
            code="busy",
        )
    if upload.state != UploadState.INTERRUPTED:
        raise UploadRefused(
            f"Upload {upload.pk} is {upload.state}: there is nothing to resume.",
            status=409,
            code="state",
        )
    if offset != expected:
        raise OffsetMismatch(
            f"Upload {upload.pk} continues at byte {expected}, not {offset}.", expected
        )
    with transaction.atomic():
        resumed = Upload.objects.filter(pk=upload.pk, state=UploadState.INTERRUPTED).update(
            state=UploadState.RECEIVING,
            bytes_received=offset,
            error_code="",
            error="",
            interrupted_at=None,
        )
        claimed = resumed and Job.objects.filter(
            pk=upload.job_id,
            state__in=(states.FAILED, states.PARTIAL),
            cancel_requested__isnull=True,
        ).update(attempts=F("attempts") + 1, **_claim(owner))
        if not claimed:
            transaction.set_rollback(True)
            raise UploadRefused(
                f"Upload {upload.pk} is being resumed or cancelled by another request.",
                status=409,
                code="busy",
            )
        not_done = JobTarget.objects.filter(job=upload.job_id).exclude(
            state=states.TargetState.DONE.value
        )
        not_done.update(state=states.TargetState.PENDING.value, next_attempt_at=None)
    upload.refresh_from_db()
    return upload.job


def cancel_upload(upload: Upload, user: User | None) -> Upload:
    """Stop an upload: before its data, at once; during, through its job (the job deletes what it
    wrote in every cloud).

    Raises:
        UploadRefused: It has already ended (409).
    """
    if upload.state == UploadState.INTERRUPTED:
        # Its job has ended (failed, waiting for the rest): the part is all there is to drop.
        if not Upload.objects.filter(pk=upload.pk, state=UploadState.INTERRUPTED).update(
            state=UploadState.CANCELLED,
            error_code="cancelled",
            error="Cancelled while interrupted.",
        ):
            raise UploadRefused(f"Upload {upload.pk} is being resumed.", status=409, code="state")
        content_cache().remove_upload_part(upload.part_key)
    elif upload.job_id is not None:
        try:
            job_services.cancel(upload.job, user)
        except job_services.JobRefused as exc:
            raise UploadRefused(exc.message, status=409, code="state") from None
    elif not Upload.objects.filter(pk=upload.pk, state=UploadState.WAITING).update(
        state=UploadState.CANCELLED,
        error_code="cancelled",
        error="Cancelled before any data arrived.",
    ):
        raise UploadRefused(f"Upload {upload.pk} is {upload.state}.", status=409, code="state")
    audit.record(
        "upload.cancel",
        user=user,
        group=upload.group,
        image=upload.name,
        details={"upload": upload.pk},
    )
    upload.refresh_from_db()
    return upload


# Downloading


@dataclasses.dataclass(frozen=True)
class DownloadSource:
    """The copy a download streams: its repo, cloud image id, size and hashes."""

    repo: Repo
    image_id: str
    name: str
    size: int | None
    disk_format: str
    sha256: str
    hash_algo: str
    hash_value: str
    md5: str


def download_source(group: Group, row: Row) -> DownloadSource:
    """An active copy of a verifiable ``row`` in a healthy repo (its last poll did not fail): an
    original before a copy Glint converted (the row's bytes, not EC2's raw of them), then a copy
    the group's own project holds.

    Raises:
        UploadRefused: The row cannot be verified, or no healthy repo holds an active copy (409).
    """
    if not row.verifiable:
        raise UploadRefused(
            f"{row.name} has no content hash: Glint serves only verifiable images.", status=409
        )
    repos = {r.pk: r for r in Repo.objects.filter(group=group, enabled=True)}
    candidates = []
    for repo_id, cell in row.cells.items():
        repo = repos.get(repo_id)
        if (
            repo is None
            or repo.last_poll_ok is False
            or cell.state not in (CellState.PRESENT, CellState.FOREIGN)
        ):
            continue
        for copy in cell.copies:
            if copy.status == "active":
                candidates.append(
                    (copy.converted, cell.state is not CellState.PRESENT, repo.name, repo, copy)
                )
    if not candidates:
        raise UploadRefused(
            f"No healthy repo holds an active copy of {row.name} right now.", status=409
        )
    *_, repo, copy = min(candidates, key=lambda c: c[:3])
    algo, _, value = row.content_key.partition(":")
    sha256 = copy.glint_sha256 or (value if algo == "sha256" else "")
    return DownloadSource(
        repo=repo,
        image_id=copy.image_id,
        name=copy.name,
        size=copy.size,
        disk_format=copy.disk_format,
        sha256=sha256,
        hash_algo=copy.os_hash_algo,
        hash_value=copy.os_hash_value,
        md5=copy.checksum,
    )


@dataclasses.dataclass(frozen=True)
class Conversion:
    """A download in another disk format: the file in the cache once made (``entry``), else the
    job making it; neither when the stored bytes already are in that format."""

    entry: CacheEntry | None
    job: Job | None
    source_sha256: str = ""


def prepare_conversion(
    group: Group, row: Row, source: DownloadSource, disk_format: str, requester: User | None
) -> Conversion:
    """The ``disk_format`` file of ``row`` from the cache, or the job that makes it (started now
    unless one is at work).

    Raises:
        UploadRefused: The stored format is one Glint cannot convert (422).
    """
    if not needs_conversion(source.disk_format, disk_format):
        return Conversion(None, None)
    try:
        qemu_input_format(source.disk_format)
    except ConversionFailed as exc:
        raise UploadRefused(exc.message, status=422) from None
    cache = content_cache()
    for sha256 in _source_sha256s(group, row, source):
        entry = cache.converted(sha256, disk_format)
        if entry is not None:
            return Conversion(entry, None, sha256)
    job = job_services.submit_conversion(
        group,
        row,
        source=source.repo,
        image_id=source.image_id,
        disk_format=disk_format,
        requester=requester,
    )
    return Conversion(None, job)


def _source_sha256s(group: Group, row: Row, source: DownloadSource) -> list[str]:
    """The sha256s the row's bytes are known by: Glint's own, else what earlier conversions
    read (a row whose clouds hash with sha512 or md5 only)."""
    found = (
        Job.objects.filter(
            row_key__in=job_services.row_keys(group, states.CONVERT, row),
            kind=states.CONVERT,
            state=states.DONE,
        )
        .exclude(sha256="")
        .order_by("-finished")
        .values_list("sha256", flat=True)[:3]
    )
    return [sha256 for sha256 in dict.fromkeys([source.sha256, *found]) if sha256]
