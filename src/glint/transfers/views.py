"""The upload page, and the page that prepares a download in another disk format.

The upload page only draws the form: the browser sends the metadata to ``POST /api/v1/uploads/``
and the file with ``PUT upload_url`` (``static/transfers/upload.js``), so the bytes are streamed
exactly as the command line streams them, and the progress bar shows the browser's own upload
progress, then each target's.

The conversion page starts (or finds) the job that makes the file, shows its progress, and once
the file is in the cache sends the browser to the API download, which serves it.
"""

from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from glint.accounts.access import current_group
from glint.jobs import states
from glint.jobs.matrix import find_row
from glint.jobs.models import Job
from glint.replication import CONVERSION_FORMATS, ConflictPolicy
from glint.transfers import formats
from glint.transfers.services import (
    VISIBILITIES,
    UploadRefused,
    download_source,
    prepare_conversion,
)


@require_GET
def upload_page(request):
    group = current_group(request)
    repos = group.repos.filter(enabled=True).order_by("name") if group is not None else []
    return render(
        request,
        "transfers/upload.html",
        {
            "group": group,
            "repos": repos,
            "disk_formats": formats.DISK_FORMATS,
            "container_formats": formats.CONTAINER_FORMATS,
            "visibilities": VISIBILITIES,
            "policies": [p.value for p in ConflictPolicy],
        },
    )


@require_GET
def conversion_page(request, row_id, disk_format):
    """``/downloads/<row>/<format>/``: the row as a ``disk_format`` file, made first if needed.

    Without ``?job=`` it asks for the file (which may start a conversion) and then shows that
    job; with it, it only looks at the job, so reloading or polling the page never starts
    another conversion after one failed.
    """
    matrix, row = find_row(request.user, row_id)
    if disk_format not in CONVERSION_FORMATS:
        return HttpResponseBadRequest(
            f"Unknown format {disk_format!r}: use one of {', '.join(CONVERSION_FORMATS)}."
        )
    download = f"{reverse('api-image-download', args=[row.id])}?format={disk_format}"
    job_id = request.GET.get("job", "")
    if not job_id:
        try:
            conversion = prepare_conversion(
                matrix.group, row, download_source(matrix.group, row), disk_format, request.user
            )
        except UploadRefused as exc:
            return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
        if conversion.job is None:  # made before, or stored in that format already
            return redirect(download)
        return redirect(f"{request.path}?job={conversion.job.pk}")
    job = get_object_or_404(
        Job.objects.visible_to(request.user).filter(
            kind=states.CONVERT,
            group=matrix.group,
            image_name=row.name,
            options__format=disk_format,
        ),
        pk=job_id if job_id.isdigit() else 0,
    )
    context = {
        "group": matrix.group,
        "row": row,
        "job": job,
        "target": job.targets.first(),
        "disk_format": disk_format,
        "download": download,
    }
    if request.headers.get("HX-Request") == "true":
        response = render(request, "transfers/_conversion.html", context)
        if job.state == states.DONE:
            response["HX-Redirect"] = download  # the file is ready: the browser saves it
        return response
    return render(request, "transfers/conversion.html", context)
