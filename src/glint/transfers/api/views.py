"""``/api/v1/uploads/`` and ``/api/v1/images/{id}/download/``.

An upload from a file is two calls, so that ``curl -T`` and the CLI send the bytes as a raw stream
with no multipart overhead::

    POST /api/v1/uploads/  {"name": "ubuntu", "targets": ["cloud-a", "cloud-b"], "size": 123}
         → 201 {"id": 7, "upload_url": "https://…/api/v1/uploads/7/data", "state": "waiting", …}
    PUT  /api/v1/uploads/7/data    (the raw bytes: ``curl -T disk.qcow2 URL``)
         → 200 {"state": "received", "job": 12, "job_state": "done", …}   once every target ended

A web link is one call (``"url": …``); the fan-out job runs in a worker. Either way the job
(``/api/v1/jobs/{job}/``) tells each target's progress.

A file upload whose connection broke, or whose server stopped, is ``interrupted`` and resumed in
the manner of the IETF draft "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload)::

    HEAD  /api/v1/uploads/7/data   → 204, Upload-Offset: 104857600 (the bytes Glint has safe)
    PATCH /api/v1/uploads/7/data   Upload-Offset: 104857600, the rest of the bytes
         → as the PUT; 409 with the server's Upload-Offset when the offset is not it
"""

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from glint.accounts.access import current_group, visible_group
from glint.clouds import CHUNK_SIZE
from glint.replication import CONVERSION_FORMATS
from glint.repos.models import Repo
from glint.transfers import services
from glint.transfers.api.resume import OFFSET_HEADER, offset_header, offset_response
from glint.transfers.api.serializers import UploadCreateSerializer, UploadSerializer
from glint.transfers.downloads import download_response
from glint.transfers.models import Upload
from glint.transfers.sources import request_chunks


def _refused(exc: services.UploadRefused) -> Response:
    return Response({"detail": exc.message, "code": exc.code}, status=exc.status)


def _repos(group, names: list[str]) -> list[Repo]:
    repos = []
    for name in names:
        query = Q(name=name) | (Q(pk=int(name)) if name.isdigit() else Q(pk__in=[]))
        repo = Repo.objects.filter(query, group=group).first()
        if repo is None:
            raise ValidationError({"targets": [f"No repo {name!r} in group {group.name}."]})
        repos.append(repo)
    return repos


class UploadViewSet(viewsets.ReadOnlyModelViewSet):
    """Images brought to Glint from a file or a web link, each fanned out to some of a group's
    repos."""

    queryset = Upload.objects.none()  # for the schema; get_queryset picks the caller's uploads
    serializer_class = UploadSerializer

    def get_queryset(self):
        uploads = Upload.objects.filter(
            group__in=self.request.user.visible_groups()
        ).select_related("job")
        if self.request.query_params.get("group"):
            uploads = uploads.filter(
                group=visible_group(self.request.user, self.request.query_params["group"])
            )
        return uploads.prefetch_related("targets")

    @extend_schema(
        request=UploadCreateSerializer,
        responses={
            201: UploadSerializer,
            413: OpenApiResponse(
                description="The announced size is over the limit (upload_max_bytes)."
            ),
        },
    )
    def create(self, request):
        """Start an upload: metadata and targets; then PUT the bytes to ``upload_url`` (a file),
        or Glint fetches ``url`` (a web link; refused at once if its address may not be reached)."""
        data = UploadCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        group = (
            visible_group(request.user, values.pop("group"))
            if "group" in values
            else current_group(request)
        )
        if group is None:
            raise ValidationError({"group": "You belong to no group yet."})
        algo, _, digest = values.pop("checksum", "").rpartition(":")
        try:
            upload = services.create_upload(
                group,
                requester=request.user,
                targets=_repos(group, values.pop("targets")),
                checksum_algo=algo,
                checksum=digest,
                **values,
            )
        except services.UploadRefused as exc:
            return _refused(exc)
        return Response(
            UploadSerializer(upload, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses={202: UploadSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop the upload; whatever it wrote in any cloud is deleted. 409 if it has ended."""
        try:
            upload = services.cancel_upload(self.get_object(), request.user)
        except services.UploadRefused as exc:
            return _refused(exc)
        return Response(
            UploadSerializer(upload, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
        )


_DATA_RESPONSES = {
    200: UploadSerializer,
    400: OpenApiResponse(
        description=(
            "A declared format or checksum the bytes contradict, a qcow2 naming a backing or data "
            "file, or the upload broke off (then it is interrupted: resume it)."
        )
    ),
    409: OpenApiResponse(
        description=(
            "The data was sent already, the upload is busy, or (resume) the Upload-Offset is not "
            "the server's, which the answer's Upload-Offset gives."
        )
    ),
    413: OpenApiResponse(description="Over the size limit (upload_max_bytes)."),
}
_BINARY = {"application/octet-stream": {"type": "string", "format": "binary"}}
_OFFSET = OpenApiParameter(
    OFFSET_HEADER,
    int,
    OpenApiParameter.HEADER,
    description=("Where the body starts in the image: the Upload-Offset a HEAD answered (resume)."),
)


class UploadDataView(APIView):
    """The bytes of an upload from a file, as the raw request body (``curl -T FILE URL``)."""

    parser_classes = []  # the body is never parsed (nor read into memory): it is streamed

    def _upload(self, request, pk) -> Upload:
        visible = Upload.objects.filter(group__in=request.user.visible_groups())
        return get_object_or_404(visible, pk=pk)

    @extend_schema(
        request=None,
        responses={
            204: OpenApiResponse(
                description=(
                    "Upload-Offset: the bytes Glint holds (send the rest from there); "
                    "Upload-Length: the size, when announced; Upload-Complete: ?1 once all arrived."
                )
            )
        },
    )
    def head(self, request, pk):
        """Where an upload stands: the offset a resume continues from."""
        return offset_response(self._upload(request, pk))

    @extend_schema(parameters=[_OFFSET], request=_BINARY, responses=_DATA_RESPONSES)
    def put(self, request, pk):
        """Send the image; answers when every target has it (see ``job`` for each target's outcome).
        With ``Upload-Offset``, the rest of an interrupted upload (as ``PATCH``)."""
        return self._receive(request, pk, offset_header(request))

    @extend_schema(parameters=[_OFFSET], request=_BINARY, responses=_DATA_RESPONSES)
    def patch(self, request, pk):
        """Resume an interrupted upload: the bytes from ``Upload-Offset`` (required) to the end.

        ``HEAD`` on this URL answers 204 with ``Upload-Offset``: the bytes Glint holds safe, where
        the rest starts (and ``Upload-Length``, ``Upload-Complete: ?0``/``?1``). An offset that is
        not that one is a 409 whose ``Upload-Offset`` header (and ``offset``) gives it. The whole
        image is verified at the end (sha256, and the declared checksum). An interrupted upload
        not resumed within ``GLINT_UPLOAD_RESUME_HOURS`` fails."""
        offset = offset_header(request)
        if offset is None:
            return Response(
                {
                    "detail": f"A PATCH needs the {OFFSET_HEADER} header (HEAD tells it).",
                    "code": "invalid",
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return self._receive(request, pk, offset)

    def _receive(self, request, pk, offset: int | None):
        upload = self._upload(request, pk)
        if upload.requester_id != request.user.pk:
            return Response(
                {"detail": "Only the person who started this upload may send its data."},
                status=status.HTTP_403_FORBIDDEN,
            )
        meta = request._request.META
        length = meta.get("CONTENT_LENGTH")
        length = int(length) if length and length.isdigit() else None
        body = request_chunks(meta["wsgi.input"], length, CHUNK_SIZE)
        try:
            upload = services.receive(upload, body, length, offset)
        except services.OffsetMismatch as exc:
            return Response(
                {"detail": exc.message, "code": exc.code, "offset": exc.offset},
                status=exc.status,
                headers={OFFSET_HEADER: str(exc.offset)},
            )
        except services.UploadRefused as exc:
            return _refused(exc)
        data = UploadSerializer(upload, context={"request": request}).data
        code = {
            "too_large": 413,
            "format_mismatch": 400,
            "checksum_mismatch": 400,
            "upload_interrupted": 400,
        }.get(upload.error_code, 200)
        if upload.state == "cancelled":
            code = status.HTTP_409_CONFLICT
        if code >= 400:
            data["detail"] = upload.error  # what a refusal says everywhere in the API
        offset = services.resume_offset(upload)
        return Response(data, status=code, headers={OFFSET_HEADER: str(offset)})


class _DiskFormatNegotiation(DefaultContentNegotiation):
    """Answers are the image's bytes or plain text, whatever renderer the request names; and
    ``?format=`` here is the disk format, which DRF would take for a renderer's name (404)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class DownloadView(APIView):
    """The bytes of a matrix row, streamed from a healthy repo that holds an active copy, or
    converted to another disk format (``?format=``)."""

    content_negotiation_class = _DiskFormatNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "Range", str, OpenApiParameter.HEADER, description="bytes=START-[END]: resume."
            ),
            OpenApiParameter(
                "format",
                str,
                enum=list(CONVERSION_FORMATS),
                description="The disk format to serve it in, converted by Glint first (202 with "
                "the job until the file is made); default: as stored.",
            ),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="The image."),
            (206, "application/octet-stream"): OpenApiResponse(description="The range asked for."),
            202: OpenApiResponse(description="Converting: the job, its progress, Retry-After."),
            400: OpenApiResponse(description="An unknown format."),
            422: OpenApiResponse(description="The stored format cannot be converted."),
            409: OpenApiResponse(description="No healthy repo holds a verified copy."),
            416: OpenApiResponse(description="The range is outside the image."),
        },
    )
    def get(self, request, pk):
        """Download the image: Content-Length, Range (206), ETag and Repr-Digest (sha-256) when
        known."""
        return download_response(request, pk)
