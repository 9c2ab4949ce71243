"""The image page's downloads for other clouds, in Django's handler against the devcloud: a link
per format, a page that starts the conversion job and follows it, and the file once it is made;
no second job for a file already made, none at all for the format an image is stored in."""

from __future__ import annotations

import pytest

from glint.inventory.poller import poll_repos
from glint.jobs import states
from glint.jobs.models import Job
from tests.clients import client_for, make_user
from tests.jobs.images import upload
from tests.plans.helpers import row_of
from tests.transfers.helpers import run_job

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_image_page_converts_for_another_cloud_and_serves_the_file(
    devcloud, group_a, repos, image_name
):
    upload(devcloud, "devcloud-1", image_name, MiB)
    poll_repos(repos)
    row = row_of(group_a, image_name)
    member = client_for(make_user("Format Member", group=group_a))

    page = member.get(f"/images/{row.id}/").content.decode()
    for fmt, label in (("vmdk", "vmdk (VMware)"), ("vhd", "vhd (Azure)"), ("gce", "Compute")):
        assert f'href="/downloads/{row.id}/{fmt}/"' in page and label in page

    started = member.get(f"/downloads/{row.id}/vmdk/")
    assert started.status_code == 302
    job = Job.objects.get(kind=states.CONVERT)
    assert started["Location"] == f"/downloads/{row.id}/vmdk/?job={job.pk}"
    waiting = member.get(started["Location"], **HTMX)
    assert "hx-trigger" in waiting.content.decode() and "HX-Redirect" not in waiting
    other = member.get(f"/downloads/{row.id}/vhd/?job={job.pk}")
    assert other.status_code == 404, "the vmdk job is not the vhd file's"

    # Asked again while it is queued: the same job, not a second one.
    assert member.get(f"/downloads/{row.id}/vmdk/")["Location"] == started["Location"]
    api = member.get(f"/api/v1/images/{row.id}/download/", {"format": "vmdk"})
    assert api.status_code == 202, api.content
    assert api.json()["job"] == job.pk and api["Retry-After"] == "2"
    assert api["Location"] == f"/api/v1/jobs/{job.pk}/"

    assert run_job(job.pk).state == states.DONE
    done = member.get(started["Location"], **HTMX)
    file_url = f"/api/v1/images/{row.id}/download/?format=vmdk"
    assert done["HX-Redirect"] == file_url and "Save the vmdk file" in done.content.decode()
    served = member.get(file_url)
    body = b"".join(served.streaming_content)
    assert served.status_code == 200 and body[:4] == b"KDMV", "a stream-optimized vmdk"
    assert served["Content-Disposition"].startswith(f'attachment; filename="{image_name}.vmdk"')
    assert served["Content-Length"] == str(len(body))

    # Made once: the link now leads straight to the file.
    assert member.get(f"/downloads/{row.id}/vmdk/")["Location"] == file_url
    assert Job.objects.filter(kind=states.CONVERT).count() == 1

    # The format it is stored in needs no job; an unknown one is refused.
    assert member.get(f"/downloads/{row.id}/raw/")["Location"].endswith("?format=raw")
    assert Job.objects.filter(kind=states.CONVERT).count() == 1
    refused = member.get(f"/downloads/{row.id}/ova/")
    assert refused.status_code == 400 and "use one of raw, qcow2, vmdk, vhd, gce" in (
        refused.content.decode()
    )
