"""Serve a matrix row's bytes: streamed from the cloud, resumable, with the hashes in headers.

Memory stays bounded at any size: the response is a generator over the driver's
``open_read(id, offset)``, one chunk at a time. HTTP semantics (RFC 9110, RFC 9530):

- ``Content-Length`` and ``Accept-Ranges: bytes``; one ``Range: bytes=a-b`` (or ``a-``, ``-n``)
  answers 206 with ``Content-Range``; a range outside the image answers 416; several ranges are
  answered with the whole image (allowed, and no client of images needs multipart);
- ``ETag`` is the content hash, so it is strong and the same from every repo; ``If-Range`` with
  another tag gets the whole image, so a resumed download never splices two different images;
- ``Repr-Digest`` gives sha-256 (Glint's) and sha-512 (the cloud's, when it hashes with it) of the
  whole image; ``X-Glint-Os-Hash`` and ``X-Glint-Checksum`` carry the cloud's own hash and md5;
- ``Content-Disposition`` names the file after the image, made safe (ASCII fallback plus an
  RFC 5987 ``filename*``).
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse

from glint import audit
from glint.jobs.matrix import find_row
from glint.replication import CHUNK_SIZE, CONVERSION_FORMATS, CacheEntry, CloudError
from glint.repos.drivers import open_driver
from glint.transfers.services import (
    DownloadSource,
    UploadRefused,
    download_source,
    prepare_conversion,
)

__all__ = ["content_disposition", "download_response", "parse_range"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_EXTENSIONS = {
    "qcow2": ".qcow2",
    "raw": ".img",
    "vmdk": ".vmdk",
    "vhd": ".vhd",
    "vhdx": ".vhdx",
    "iso": ".iso",
    "gce": ".tar.gz",
}
#: Seconds a client is asked to wait before asking again for a conversion under way.
CONVERSION_RETRY_AFTER_SECONDS = 2


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """``(first, last)`` byte positions asked for; None for the whole image; False if
    unsatisfiable."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if not match or not (match.group(1) or match.group(2)):
        return None  # not a byte range we understand: ignore it (RFC 9110 §14.2)
    first, last = match.group(1), match.group(2)
    if not first:  # the last n bytes
        count = int(last)
        return (max(0, size - count), size - 1) if count and size else False
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


def content_disposition(name: str, disk_format: str) -> str:
    """``attachment`` with a file name no client can misread (no quotes, slashes or controls)."""
    extension = _EXTENSIONS.get(disk_format, "")
    full = name
    if extension and not name.lower().endswith(extension):
        # A converted image keeps its name, not the extension of the format it was stored in.
        stored = next((e for e in _EXTENSIONS.values() if name.lower().endswith(e)), "")
        full = (name[: -len(stored)] if stored and len(name) > len(stored) else name) + extension
    plain = _UNSAFE.sub("_", full).strip("._") or "image"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(full, safe='')}"


def _b64(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


def _hash_headers(source: DownloadSource) -> dict[str, str]:
    headers = {}
    digests = []
    if source.sha256:
        headers["ETag"] = f'"sha256-{source.sha256}"'
        digests.append(f"sha-256=:{_b64(source.sha256)}:")
    if source.hash_algo == "sha512" and source.hash_value:
        digests.append(f"sha-512=:{_b64(source.hash_value)}:")
        headers.setdefault("ETag", f'"sha512-{source.hash_value}"')
    if digests:
        headers["Repr-Digest"] = ", ".join(digests)
    if source.hash_algo and source.hash_value:
        headers["X-Glint-Os-Hash"] = f"{source.hash_algo}:{source.hash_value}"
    if source.md5:
        headers["X-Glint-Checksum"] = f"md5:{source.md5}"
    return headers


def _cloud_chunks(source: DownloadSource, first: int, last: int):
    """The bytes ``first..last`` of the image, straight from the cloud."""
    remaining = last - first + 1
    with open_driver(source.repo) as cloud, cloud.open_read(source.image_id, first) as reader:
        for chunk in reader:
            if len(chunk) >= remaining:
                yield chunk[:remaining]
                return
            remaining -= len(chunk)
            yield chunk


def _file_chunks(entry: CacheEntry, first: int, last: int):
    """The bytes ``first..last`` of a file in the content cache (a conversion)."""
    remaining = last - first + 1
    with entry.path.open("rb") as handle:
        handle.seek(first)
        while remaining > 0 and (chunk := handle.read(min(CHUNK_SIZE, remaining))):
            remaining -= len(chunk)
            yield chunk


def download_response(request, row_id: str) -> HttpResponse:
    """The response for ``GET /api/v1/images/{row_id}/download/[?format=]`` (see the module
    docstring)."""
    matrix, row = find_row(request.user, row_id)
    wanted_format = request.GET.get("format", "")
    if wanted_format and wanted_format not in CONVERSION_FORMATS:
        return HttpResponse(
            f"Unknown format {wanted_format!r}: use one of {', '.join(CONVERSION_FORMATS)}.",
            status=400,
            content_type="text/plain",
        )
    try:
        source = download_source(matrix.group, row)
        conversion = (
            prepare_conversion(matrix.group, row, source, wanted_format, request.user)
            if wanted_format
            else None
        )
    except UploadRefused as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    if conversion is not None and conversion.job is not None:
        return _converting(conversion.job, wanted_format)
    if conversion is not None and conversion.entry is not None:
        entry = conversion.entry
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": content_disposition(source.name, wanted_format),
            "ETag": f'"sha256-{entry.sha256}"',
            "Repr-Digest": f"sha-256=:{_b64(entry.sha256)}:",
            "X-Glint-Converted-From": f"{source.disk_format} sha256:{conversion.source_sha256}",
        }
        return _ranged(
            request,
            matrix.group,
            row,
            source,
            entry.size,
            headers,
            lambda first, last: _file_chunks(entry, first, last),
            wanted_format,
        )
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(source.name, source.disk_format),
        **_hash_headers(source),
    }
    return _ranged(
        request,
        matrix.group,
        row,
        source,
        source.size or 0,
        headers,
        lambda first, last: _cloud_chunks(source, first, last),
        "",
    )


def _converting(job, wanted_format: str) -> HttpResponse:
    """202: the conversion is under way; the job says how far, and when it is done."""
    target = job.targets.first()
    progress = target.progress if target else None
    response = JsonResponse(
        {
            "detail": f"Glint is preparing the {wanted_format} file; ask again when job "
            f"{job.pk} is done.",
            "format": wanted_format,
            "job": job.pk,
            "state": job.state,
            "progress": progress,
        },
        status=202,
    )
    response["Retry-After"] = str(CONVERSION_RETRY_AFTER_SECONDS)
    response["Location"] = reverse("job-detail", args=[job.pk])
    return response


def _ranged(request, group, row, source, size, headers, chunks_of, wanted_format):
    """The whole file or the range asked for, streamed from ``chunks_of(first, last)``."""
    wanted = parse_range(request.META.get("HTTP_RANGE"), size)
    if_range = request.META.get("HTTP_IF_RANGE")
    if wanted is not None and if_range and if_range != headers.get("ETag"):
        wanted = None  # the client holds part of another image: send this one whole
    if wanted is False:
        return HttpResponse(status=416, headers={"Content-Range": f"bytes */{size}", **headers})
    first, last = wanted or (0, size - 1)
    try:
        body = chunks_of(first, last)
        # Opening the stream now turns a cloud's error into a 502 here, not a broken body.
        first_chunk = next(body, b"") if last >= first else b""
    except CloudError as exc:
        return HttpResponse(
            f"{source.repo.name}: {exc.message}", status=502, content_type="text/plain"
        )

    def chunks():
        yield first_chunk
        yield from body

    response = StreamingHttpResponse(
        chunks(),
        status=206 if wanted else 200,
        content_type="application/octet-stream",
        headers=headers,
    )
    response["Content-Length"] = str(max(0, last - first + 1))
    if wanted:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    details = {"image_id": source.image_id, "range": f"{first}-{last}" if wanted else "all"}
    if wanted_format:
        details["format"] = wanted_format
    audit.record("image.download", group=group, repo=source.repo, image=row.name, details=details)
    return response
