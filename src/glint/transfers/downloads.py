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

from django.http import HttpResponse, StreamingHttpResponse

from glint import audit
from glint.jobs.matrix import find_row
from glint.replication import CloudError
from glint.repos.drivers import open_driver
from glint.transfers.services import DownloadSource, UploadRefused, download_source

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
}


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
    full = name if not extension or name.lower().endswith(extension) else name + extension
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


def _stream(source: DownloadSource, first: int, last: int):
    """The bytes ``first..last`` of the image, straight from the cloud."""
    remaining = last - first + 1
    with open_driver(source.repo) as cloud, cloud.open_read(source.image_id, first) as reader:
        for chunk in reader:
            if len(chunk) >= remaining:
                yield chunk[:remaining]
                return
            remaining -= len(chunk)
            yield chunk


def download_response(request, row_id: str) -> HttpResponse:
    """The response for ``GET /api/v1/images/{row_id}/download/`` (see the module docstring)."""
    matrix, row = find_row(request.user, row_id)
    try:
        source = download_source(matrix.group, row)
    except UploadRefused as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    size = source.size or 0
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(source.name, source.disk_format),
        **_hash_headers(source),
    }
    wanted = parse_range(request.META.get("HTTP_RANGE"), size)
    if_range = request.META.get("HTTP_IF_RANGE")
    if wanted is not None and if_range and if_range != headers.get("ETag"):
        wanted = None  # the client holds part of another image: send this one whole
    if wanted is False:
        return HttpResponse(status=416, headers={"Content-Range": f"bytes */{size}", **headers})
    first, last = wanted or (0, size - 1)
    try:
        body = _stream(source, first, last)
        if last >= first:
            first_chunk = next(
                body, b""
            )  # opens the cloud stream now: its errors become a 502 here
        else:
            first_chunk = b""
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
    audit.record(
        "image.download",
        group=matrix.group,
        repo=source.repo,
        image=row.name,
        details={"image_id": source.image_id, "range": f"{first}-{last}" if wanted else "all"},
    )
    return response
