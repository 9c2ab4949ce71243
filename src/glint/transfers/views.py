"""The upload page. The page only draws the form: the browser sends the metadata to
``POST /api/v1/uploads/`` and the file with ``PUT upload_url`` (``static/transfers/upload.js``),
so the bytes are streamed exactly as the command line streams them, and the progress bar shows
the browser's own upload progress, then each target's."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from glint.accounts.access import current_group
from glint.replication import ConflictPolicy
from glint.transfers import formats
from glint.transfers.services import VISIBILITIES


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
