"""Uploads from a web link, against the devcloud: fetched safely, checked against a checksum, fanned
out like a file; bad links refused at once (nothing connected to, nothing created) or, when only
the fetch can tell (a redirect, the size, the checksum), failed as a job with nothing left behind.

The loopback web server is allow-listed (``fetch_allow_cidrs``) by each test that needs it: by
default Glint refuses loopback like any other internal address.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from django.db import connection

from glint.jobs import services as job_services
from glint.jobs.models import Job, JobTarget
from glint.transfers.models import Upload
from tests.jobs.images import images_named, random_chunks
from tests.transfers.helpers import link_upload, run_job

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

NOTHING = {"devcloud-1": [], "devcloud-2": [], "devcloud-3": []}


def test_a_link_with_a_checksum_is_fetched_verified_and_fanned_out(
    devcloud, client, group_a, repos, web, settings, image_name
):
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    settings.GLINT_CLOUD_PULL = False  # through Glint; test_cloud_pull.py has the clouds fetch it
    data = b"".join(random_chunks(image_name, 2 * 2**20))
    sha256 = web.add(f"/images/{image_name}", data)
    web.add("/images/SHA256SUMS", f"{sha256}  {image_name}\n".encode())

    response = link_upload(
        client,
        group_a,
        repos,
        web.url(f"/images/{image_name}"),
        checksum_url=web.url("/images/SHA256SUMS"),
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["name"] == image_name, "the name is the link's last path segment"
    assert created["upload_url"] is None and created["job_state"] == "queued"

    job = run_job(created["job"])

    assert job.state == "done", job.error
    upload = Upload.objects.get(pk=created["id"])
    assert (
        upload.state == "received" and upload.sha256 == sha256 and upload.expected_digest == sha256
    )
    for cloud in ("devcloud-1", "devcloud-2"):
        (image,) = images_named(devcloud, image_name)[cloud]
        assert image.status == "active" and image.properties["glint_sha256"] == sha256


@pytest.mark.parametrize(
    "case", ["redirect to 127.0.0.1", "over the size limit", "checksum mismatch"]
)
def test_what_only_the_fetch_tells_fails_the_job_and_leaves_nothing(
    devcloud, client, group_a, repos, web2, settings, image_name, case
):
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.2/32"]  # the server's address, not 127.0.0.1
    data = b"".join(random_chunks(image_name, 2**20))
    web2.add(f"/{image_name}", data)
    fields, code = (
        {},
        {
            "redirect to 127.0.0.1": "url_refused",
            "over the size limit": "too_large",
            "checksum mismatch": "checksum_mismatch",
        }[case],
    )
    if case == "redirect to 127.0.0.1":
        web2.redirects[f"/{image_name}"] = f"http://127.0.0.1:{web2.port}/{image_name}"
    elif case == "over the size limit":
        settings.GLINT_UPLOAD_MAX_BYTES = 2**19
    else:
        fields["checksum"] = hashlib.sha256(b"other bytes").hexdigest()

    response = link_upload(client, group_a, repos, web2.url(f"/{image_name}"), **fields)
    assert response.status_code == 201, response.content
    job = run_job(response.json()["job"])

    assert job.state == "failed" and job.error_code == code, (job.error_code, job.error)
    assert Upload.objects.get(job=job).state == "failed"
    assert len(web2.requests) == 1, "fetched once; a redirect's target was never reached"
    assert images_named(devcloud, image_name) == NOTHING


def test_a_cancel_while_the_link_stalls_mid_image_ends_the_upload_at_once_and_leaves_nothing(
    devcloud, client, group_a, repos, web, settings, image_name
):
    """The web server sends part of the image and then nothing, its connection open (a mirror
    that hangs): a cancel ends the read now, not after the fetch's idle timeout of a minute."""
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    data = b"".join(random_chunks(image_name, 8 * 2**20))
    web.add(f"/images/{image_name}", data)
    web.stall_after[f"/images/{image_name}"] = 3 * 2**20
    response = link_upload(client, group_a, repos, web.url(f"/images/{image_name}"))
    assert response.status_code == 201, response.content
    created = response.json()
    ended: list[Job] = []

    def run() -> None:
        try:
            ended.append(run_job(created["job"]))
        finally:
            connection.close()

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while not JobTarget.objects.filter(job_id=created["job"], bytes_done__gt=0).exists():
        assert time.monotonic() < deadline and runner.is_alive(), "the targets got bytes"
        time.sleep(0.05)
    time.sleep(0.5)  # the rest of what the server sent is taken; the read now waits on it
    job_services.cancel(Job.objects.get(pk=created["job"]), None)
    runner.join(15)

    assert not runner.is_alive(), "the cancel ended the stalled read"
    assert ended[0].state == "cancelled", ended[0].error
    assert Upload.objects.get(pk=created["id"]).state == "cancelled"
    assert images_named(devcloud, image_name) == NOTHING
