"""The headers of resumable uploads (draft-ietf-httpbis-resumable-upload): ``Upload-Offset``,
``Upload-Length`` and ``Upload-Complete``."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from glint.transfers import services
from glint.transfers.models import Upload, UploadState

__all__ = ["OFFSET_HEADER", "offset_header", "offset_response"]

OFFSET_HEADER = "Upload-Offset"


def offset_header(request) -> int | None:
    """The request's ``Upload-Offset`` (None without one).

    Raises:
        ValidationError: Not a non-negative integer (400).
    """
    value = request.headers.get(OFFSET_HEADER)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise ValidationError(
            {OFFSET_HEADER: f"{value!r} is not a byte offset (a non-negative integer)."}
        )
    return int(value)


def offset_response(upload: Upload) -> Response:
    """The answer to ``HEAD``: where the upload stands. ``no-store``: it changes as bytes arrive."""
    complete = upload.state in (UploadState.RECEIVED, UploadState.PULLED)
    headers = {
        OFFSET_HEADER: str(services.resume_offset(upload)),
        "Cache-Control": "no-store",
        "Upload-Complete": "?1" if complete else "?0",
    }
    if upload.size is not None:
        headers["Upload-Length"] = str(upload.size)
    return Response(status=204, headers=headers)
